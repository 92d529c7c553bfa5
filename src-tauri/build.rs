use tauri_build::{AppManifest, Attributes};

/// Every command the UI may call; each gets an `allow-…` permission that capabilities grant.
const COMMANDS: &[&str] = &[
    "app_info",
    "list_avatars",
    "create_avatar",
    "rename_avatar",
    "delete_avatar",
    "list_photos",
    "add_photos",
    "remove_photo",
    "set_watch_folder",
    "pick_photos",
    "plan_training",
    "start_training",
    "training_status",
    "cancel_training",
    "update_channel",
    "check_connection",
    "settings",
    "save_settings",
    "set_secret",
    "delete_secret",
    "diagnose",
    "spending",
    "show_model",
];

fn main() {
    let attributes = Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri build step failed: {error:#}");
    }
}
