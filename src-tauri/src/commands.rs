//! IPC commands: each one a thin wrapper that runs a core operation off the UI thread.

use studio::{Avatar, ErrorReport, Gender, NewAvatar, Studio, TrainingType};
use tauri::State;

use crate::state::{AppInfo, AppState};

type Reply<T> = Result<T, ErrorReport>;

/// Runs a synchronous core operation on the blocking pool so the webview never waits on disk.
async fn run<T: Send + 'static>(
    state: State<'_, AppState>,
    operation: impl FnOnce(&Studio) -> studio::Result<T> + Send + 'static,
) -> Reply<T> {
    let studio = state.studio()?;
    tauri::async_runtime::spawn_blocking(move || operation(&studio))
        .await
        .map_err(|error| {
            ErrorReport::internal(format!("the operation stopped unexpectedly: {error}"))
        })?
        .map_err(ErrorReport::from)
}

#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> Reply<AppInfo> {
    run(state, |studio| Ok(AppInfo::of(studio))).await
}

#[tauri::command]
pub async fn list_avatars(state: State<'_, AppState>) -> Reply<Vec<Avatar>> {
    run(state, Studio::list_avatars).await
}

#[tauri::command]
pub async fn create_avatar(
    state: State<'_, AppState>,
    name: String,
    gender: Gender,
    training_type: TrainingType,
) -> Reply<Avatar> {
    run(state, move |studio| {
        studio.create_avatar(NewAvatar {
            name,
            gender,
            training_type,
        })
    })
    .await
}

#[tauri::command]
pub async fn rename_avatar(state: State<'_, AppState>, id: String, name: String) -> Reply<Avatar> {
    run(state, move |studio| studio.rename_avatar(&id, &name)).await
}

#[tauri::command]
pub async fn delete_avatar(state: State<'_, AppState>, id: String) -> Reply<Avatar> {
    run(state, move |studio| studio.delete_avatar(&id)).await
}
