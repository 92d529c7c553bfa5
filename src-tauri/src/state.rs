//! What the shell holds: the application object, or why it could not be opened (shown in the UI
//! rather than as a window that never appears).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use studio::{Config, ErrorReport, Ports, Studio};

use crate::notifications::DesktopNotifier;
use ts_rs::TS;

pub struct AppState {
    studio: Result<Arc<Studio>, ErrorReport>,
    pub notifier: Arc<DesktopNotifier>,
    /// Set to stop the running "Pick the best…" (one at a time: it takes every core).
    pub curation_cancelled: Arc<AtomicBool>,
    /// Set to stop the running import (the window runs one at a time).
    pub import_cancelled: Arc<AtomicBool>,
}

/// What the UI needs to know about the running app.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AppInfo {
    pub version: String,
    /// Trainings are simulated: nothing reaches fal and nothing is paid for.
    pub test_mode: bool,
    pub library_dir: String,
    pub min_photos: u32,
    pub max_photos: u32,
    /// The preset the training panel starts on.
    #[ts(type = "Preset")]
    pub default_preset: String,
    /// `en` or `ru` when chosen in Settings; none follows the system's language.
    pub language: Option<String>,
    /// The presets, their expected times and the accepted ranges, for every screen to show alike.
    pub training: studio::TrainingChoices,
    /// The built-in sample packs.
    pub packs: Vec<studio::Pack>,
}

impl AppState {
    pub fn open(library: Option<PathBuf>) -> Self {
        let notifier = Arc::new(DesktopNotifier::default());
        let ports = Ports {
            notifier: notifier.clone(),
            ..Ports::system()
        };
        let studio = Config::from_env(library)
            .and_then(|config| Studio::open(config, ports))
            .map(Arc::new)
            .map_err(ErrorReport::from);
        Self {
            studio,
            notifier,
            curation_cancelled: Arc::default(),
            import_cancelled: Arc::default(),
        }
    }

    /// The folders the webview may load images from: thumbnails and the gallery.
    pub fn image_dirs(&self) -> Vec<PathBuf> {
        let Ok(studio) = self.studio.as_ref() else {
            return Vec::new();
        };
        let library = &studio.config().library_dir;
        vec![
            library.join(studio::THUMBNAILS_DIR),
            library.join(studio::GALLERY_DIR),
        ]
    }

    pub fn studio(&self) -> Result<Arc<Studio>, ErrorReport> {
        self.studio.clone()
    }
}

impl AppInfo {
    pub fn of(studio: &Studio) -> Self {
        let config = studio.config();
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            test_mode: config.test_mode,
            library_dir: config.library_dir.display().to_string(),
            min_photos: config.min_photos,
            max_photos: config.max_photos,
            default_preset: config.default_preset.as_str().to_string(),
            language: config.language.clone(),
            training: studio.training_choices(),
            packs: studio.packs().to_vec(),
        }
    }
}
