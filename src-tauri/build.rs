use tauri_build::{AppManifest, Attributes};

include!("src/command_list.rs");

fn main() {
    // The handler list `main.rs` includes: every command of the list, and no other.
    let handlers: Vec<String> = COMMANDS
        .iter()
        .map(|command| format!("crate::commands::{command}"))
        .collect();
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(
        std::path::Path::new(&out_dir).join("handlers.rs"),
        format!("tauri::generate_handler![{}]", handlers.join(", ")),
    )
    .expect("write the handler list");
    println!("cargo:rerun-if-changed=src/command_list.rs");
    let attributes = Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri build step failed: {error:#}");
    }
}
