//! WebKitGTK composites pages with OpenGL. On a machine with no GPU that OpenGL is emulated on the
//! CPU (llvmpipe), which costs far more than drawing the page on the CPU directly and takes the
//! cores the photo checks need: measured, a drop of 20 photos took half as long again. There,
//! hardware acceleration is turned off.

#[cfg(target_os = "linux")]
pub fn avoid_emulated_opengl(app: &tauri::App) -> tauri::Result<()> {
    use tauri::Manager;
    use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};

    if has_render_node() {
        return Ok(());
    }
    let Some(window) = app.get_webview_window("main") else {
        return Ok(());
    };
    window.with_webview(|webview| {
        if let Some(settings) = WebViewExt::settings(&webview.inner()) {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
        }
    })
}

#[cfg(not(target_os = "linux"))]
pub fn avoid_emulated_opengl(_app: &tauri::App) -> tauri::Result<()> {
    Ok(())
}

/// Whether the kernel offers a GPU to render with (a DRM render node, `/dev/dri/renderD*`).
#[cfg(target_os = "linux")]
fn has_render_node() -> bool {
    std::fs::read_dir("/dev/dri")
        .map(|entries| {
            entries
                .flatten()
                .any(|entry| entry.file_name().to_string_lossy().starts_with("renderD"))
        })
        .unwrap_or(false)
}
