//! A tray icon, so that closing the window while a training runs hides it instead of quitting:
//! the app goes on following the job and notifies at its end.

use std::sync::Arc;

use studio::Studio;
use tauri::Wry;
use tauri::menu::{Menu, MenuItem};

use crate::words::Words;
use tauri::tray::TrayIconBuilder;
use tauri::{App, AppHandle, Manager, Window, WindowEvent};

const SHOW: &str = "show";
const QUIT: &str = "quit";

/// The tray menu's items, kept to re-word them when the creator changes the language.
struct TrayItems {
    show: MenuItem<Wry>,
    quit: MenuItem<Wry>,
}

pub fn install(app: &App, studio: Option<&Studio>) -> tauri::Result<()> {
    let words = Words::of(studio);
    let show = MenuItem::with_id(app, SHOW, words.plain("tray.show"), true, None::<&str>)?;
    let quit = MenuItem::with_id(app, QUIT, words.plain("tray.quit"), true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&show, &quit])?;
    app.manage(TrayItems {
        show: show.clone(),
        quit: quit.clone(),
    });
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

/// Words the tray menu in the language now in force.
pub fn reword(app: &AppHandle, studio: &Studio) {
    if let Some(items) = app.try_state::<TrayItems>() {
        let words = Words::of(Some(studio));
        let _ = items.show.set_text(words.plain("tray.show"));
        let _ = items.quit.set_text(words.plain("tray.quit"));
    }
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
