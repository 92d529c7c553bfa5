//! The application core. [`Studio`] is built from a [`Config`] and [`Ports`] (the outside world)
//! and offers every operation the desktop shell and the CLI expose. It knows nothing of Tauri.

mod avatars;
mod config;
mod error;
mod ports;

use std::sync::Arc;

pub use avatar_library::{Avatar, AvatarStatus, Gender, Library, TrainingType};
pub use avatars::{MAX_NAME_CHARS, NewAvatar};
pub use config::{Config, ENV_LIBRARY};
pub use error::{Error, ErrorCode, ErrorReport, Result};
pub use ports::{Clock, ManualClock, Ports, SystemClock};

/// The application object: one per open library.
pub struct Studio {
    config: Config,
    library: Library,
    clock: Arc<dyn Clock>,
}

impl Studio {
    pub fn open(config: Config, ports: Ports) -> Result<Self> {
        let library = Library::open(&config.library_dir)?;
        Ok(Self {
            config,
            library,
            clock: ports.clock,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}
