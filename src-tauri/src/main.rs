//! Avatar Studio's desktop shell: opens the application core and exposes it to the UI.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod confirm;
mod events;
mod notifications;
mod rendering;
mod state;
mod tray;
mod words;

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
    let thumbnails = state.thumbnails_dir();
    let studio = state.studio().ok();
    if let Some(studio) = studio.clone() {
        // Off the main thread: the window opens while the face models load.
        std::thread::spawn(move || studio.prepare_photo_checks());
    }
    let notifier = state.notifier.clone();
    let studio_for_close = studio.clone();
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_opener::init())
        .setup(move |app| {
            // The webview may load thumbnails, and nothing else, from the disk.
            if let Some(dir) = thumbnails {
                use tauri::Manager;
                app.asset_protocol_scope().allow_directory(dir, false)?;
            }
            rendering::avoid_emulated_opengl(app)?;
            notifier.attach(app.handle().clone());
            tray::install(app, studio.as_deref())?;
            // Every start carries unfinished trainings on, whoever started them, and watches
            // the avatars' folders.
            if let Some(studio) = studio {
                let runtime = tauri::async_runtime::handle().inner().clone();
                studio.start_background(runtime, events::forward_to(app.handle().clone(), &studio));
            }
            Ok(())
        })
        .on_window_event(move |window, event| {
            tray::on_window_event(studio_for_close.as_ref(), window, event);
        })
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::list_avatars,
            commands::create_avatar,
            commands::rename_avatar,
            commands::delete_avatar,
            commands::list_photos,
            commands::add_photos,
            commands::remove_photo,
            commands::set_watch_folder,
            commands::pick_photos,
            commands::plan_training,
            commands::start_training,
            commands::training_status,
            commands::cancel_training,
            commands::update_channel,
            commands::check_connection,
            commands::settings,
            commands::save_settings,
            commands::set_secret,
            commands::delete_secret,
            commands::diagnose,
            commands::spending,
            commands::show_model,
        ])
        .run(tauri::generate_context!("../tauri.conf.json"));
    if let Err(error) = result {
        eprintln!("Avatar Studio could not start its window: {error}");
        std::process::exit(1);
    }
}
