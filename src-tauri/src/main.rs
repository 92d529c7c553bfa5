//! Avatar Studio's desktop shell: opens the application core and exposes it to the UI.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod state;

#[cfg(test)]
mod bindings;

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(name = "avatar-studio", version, about = "Avatar Studio desktop app")]
struct Args {
    /// Library folder (default: $AVATAR_STUDIO_LIBRARY, then the platform's data directory).
    #[arg(long, value_name = "DIR")]
    library: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let state = state::AppState::open(args.library);
    let result = tauri::Builder::default()
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::list_avatars,
            commands::create_avatar,
            commands::rename_avatar,
            commands::delete_avatar,
        ])
        .run(tauri::generate_context!("../tauri.conf.json"));
    if let Err(error) = result {
        eprintln!("Avatar Studio could not start its window: {error}");
        std::process::exit(1);
    }
}
