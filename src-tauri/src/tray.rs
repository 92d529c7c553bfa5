//! A tray icon, so that closing the window while a training runs hides it instead of quitting:
//! the app goes on following the job and notifies at its end.

use std::sync::Arc;

use studio::Studio;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{App, AppHandle, Manager, Window, WindowEvent};

const SHOW: &str = "show";
const QUIT: &str = "quit";

pub fn install(app: &App) -> tauri::Result<()> {
    let show = MenuItem::with_id(app, SHOW, "Show Avatar Studio", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, QUIT, "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&show, &quit])?;
    let mut tray = TrayIconBuilder::with_id("main")
        .tooltip("Avatar Studio")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id().as_ref() {
            SHOW => show_main_window(app),
            QUIT => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

pub fn show_main_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Closing the window hides it while a training is unfinished; otherwise the app quits as usual.
pub fn on_window_event(studio: Option<&Arc<Studio>>, window: &Window, event: &WindowEvent) {
    let WindowEvent::CloseRequested { api, .. } = event else {
        return;
    };
    let training = studio
        .and_then(|studio| studio.unfinished_jobs().ok())
        .is_some_and(|jobs| !jobs.is_empty());
    if training {
        api.prevent_close();
        let _ = window.hide();
    }
}
