// The one list of IPC commands (included by build.rs too, so no inner doc comments). The build
// script turns it into the handler list and the permissions; a test checks the capability file
// and writes the UI's command names from it.

/// Every command the UI may call; each gets an `allow-…` permission that capabilities grant.
pub const COMMANDS: &[&str] = &[
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
    "curate_photos",
    "cancel_curation",
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
