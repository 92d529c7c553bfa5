//! IPC commands: each one a thin wrapper that runs a core operation off the UI thread.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use studio::{
    AvatarId, AvatarView, ConnectionReport, CurateProgress, CurateResult, DeletedAvatar, Diagnosis,
    ErrorReport, GalleryImageView, Gender, GenerationView, JobView, NewAvatar, Overrides, PhotoId,
    PhotoView, Preset, SettingsView, Spending, Studio, TrainingPlan, TrainingType, UpdateChannel,
};
use tauri::{AppHandle, State};
use uuid::Uuid;

use crate::arguments::Parsed;
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

/// Runs an async core operation to its end on the blocking pool: besides waiting on the network
/// it reads and writes the library (SQLite) and may reach the keychain over D-Bus, which must not
/// hold up the runtime's workers.
async fn run_async<T, F>(
    state: State<'_, AppState>,
    operation: impl FnOnce(Arc<Studio>) -> F + Send + 'static,
) -> Reply<T>
where
    T: Send + 'static,
    F: Future<Output = studio::Result<T>>,
{
    let studio = state.studio()?;
    tauri::async_runtime::spawn_blocking(move || tauri::async_runtime::block_on(operation(studio)))
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

/// An avatar as My avatars shows it: with its cover.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct AvatarCard {
    #[serde(flatten)]
    #[ts(flatten)]
    pub avatar: AvatarView,
    /// The first photo's thumbnail, when the avatar has photos.
    pub cover_path: Option<String>,
    /// The median likeness of the newest finished sample pack, and its words.
    pub likeness: Option<f32>,
    pub likeness_band: Option<studio::LikenessBand>,
}

fn avatar_cards(studio: &Studio) -> studio::Result<Vec<AvatarCard>> {
    let covers = studio.cover_thumbnails()?;
    let likeness = studio.latest_likeness()?;
    Ok(studio
        .list_avatars()?
        .into_iter()
        .map(|avatar| {
            let median = likeness.get(&avatar.id).copied();
            AvatarCard {
                cover_path: covers
                    .get(&avatar.id)
                    .map(|path| path.display().to_string()),
                likeness: median,
                likeness_band: median.map(studio::likeness_band),
                avatar: AvatarView::from(&avatar),
            }
        })
        .collect())
}

#[tauri::command]
pub async fn list_avatars(state: State<'_, AppState>) -> Reply<Vec<AvatarCard>> {
    run(state, avatar_cards).await
}

#[tauri::command]
pub async fn create_avatar(
    state: State<'_, AppState>,
    name: String,
    gender: Gender,
    training_type: TrainingType,
) -> Reply<AvatarView> {
    run(state, move |studio| {
        let avatar = studio.create_avatar(NewAvatar {
            name,
            gender,
            training_type,
        })?;
        Ok(AvatarView::from(&avatar))
    })
    .await
}

#[tauri::command]
pub async fn rename_avatar(
    state: State<'_, AppState>,
    id: Parsed<AvatarId>,
    name: String,
) -> Reply<AvatarView> {
    run(state, move |studio| {
        Ok(AvatarView::from(&studio.rename_avatar(id.0, &name)?))
    })
    .await
}

/// Deletes an avatar with everything kept for it, and says what was removed.
#[tauri::command]
pub async fn delete_avatar(
    state: State<'_, AppState>,
    id: Parsed<AvatarId>,
) -> Reply<DeletedAvatar> {
    let studio = state.studio()?;
    let runtime = tauri::async_runtime::handle();
    // SQLite and the file sweep block; S3 deletions are awaited on that same blocking thread.
    let deleted =
        tauri::async_runtime::spawn_blocking(move || runtime.block_on(studio.delete_avatar(id.0)))
            .await
            .map_err(|error| {
                ErrorReport::internal(format!("the deletion stopped unexpectedly: {error}"))
            })??;
    Ok(deleted)
}

/// A stored photo with where the UI finds its thumbnail.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct PhotoEntry {
    pub photo: PhotoView,
    pub thumbnail_path: String,
}

/// An avatar's photos and how far the set is from training.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct PhotoSet {
    pub photos: Vec<PhotoEntry>,
    pub readiness: studio::Readiness,
    /// The folder the avatar watches for new photos, if any.
    pub watch_folder: Option<WatchFolder>,
}

/// A watched folder, and why it cannot be watched now, if it cannot.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct WatchFolder {
    pub path: String,
    pub problem: Option<studio::WatchProblem>,
}

impl PhotoEntry {
    fn new(studio: &Studio, photo: studio::Photo) -> Self {
        Self {
            thumbnail_path: studio.thumbnail_path(&photo).display().to_string(),
            photo: PhotoView::from(&photo),
        }
    }
}

/// One file's verdict during an import, with the photo when it was stored.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct ImportUpdate {
    pub result: studio::PhotoResult,
    pub stored: Option<PhotoEntry>,
}

impl ImportUpdate {
    pub fn new(studio: &Studio, mut result: studio::PhotoResult) -> Self {
        let stored = result
            .stored
            .take()
            .map(|photo| PhotoEntry::new(studio, photo));
        Self { result, stored }
    }
}

fn photo_set(studio: &Studio, avatar: &studio::Avatar) -> studio::Result<PhotoSet> {
    let set = studio.photo_set(avatar)?;
    Ok(PhotoSet {
        photos: set
            .photos
            .into_iter()
            .map(|photo| PhotoEntry::new(studio, photo))
            .collect(),
        readiness: set.readiness,
        watch_folder: set.watch_folder.map(|watched| WatchFolder {
            path: watched.folder.display().to_string(),
            problem: watched.problem,
        }),
    })
}

#[tauri::command]
pub async fn list_photos(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
) -> Reply<PhotoSet> {
    run(state, move |studio| {
        photo_set(studio, &studio.avatar(avatar_id.0)?)
    })
    .await
}

/// Checks and stores photos, sending each verdict over `on_result` as soon as it is known;
/// `cancel_import` stops it (the reply is then a `cancelled` error; photos stored stay).
#[tauri::command]
pub async fn add_photos(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
    paths: Vec<String>,
    on_result: tauri::ipc::Channel<ImportUpdate>,
) -> Reply<PhotoSet> {
    let cancelled = state.import_cancelled.clone();
    cancelled.store(false, Ordering::SeqCst);
    run(state, move |studio| {
        // Found once: the import and the reply read the same avatar.
        let avatar = studio.avatar(avatar_id.0)?;
        let paths: Vec<std::path::PathBuf> = paths.into_iter().map(Into::into).collect();
        let keep_going = || !cancelled.load(Ordering::SeqCst);
        studio.add_photos_until(&avatar, &paths, &keep_going, |result| {
            // A closed window stops listening; the import itself goes on.
            let _ = on_result.send(ImportUpdate::new(studio, result));
        })?;
        photo_set(studio, &avatar)
    })
    .await
}

/// Stops the running import.
#[tauri::command]
pub async fn cancel_import(state: State<'_, AppState>) -> Reply<()> {
    state.import_cancelled.store(true, Ordering::SeqCst);
    Ok(())
}

/// Makes the avatar watch `folder` for new photos from now on, at every start too; `None`
/// stops watching.
#[tauri::command]
pub async fn set_watch_folder(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
    folder: Option<String>,
) -> Reply<PhotoSet> {
    run(state, move |studio| {
        studio.set_watch_folder(avatar_id.0, folder.as_deref().map(std::path::Path::new))?;
        photo_set(studio, &studio.avatar(avatar_id.0)?)
    })
    .await
}

#[tauri::command]
pub async fn remove_photo(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
    photo_id: Parsed<PhotoId>,
) -> Reply<PhotoSet> {
    run(state, move |studio| {
        studio.remove_photo(avatar_id.0, photo_id.0)?;
        photo_set(studio, &studio.avatar(avatar_id.0)?)
    })
    .await
}

/// How many photos "Pick the best…" shows beside the picked ones, to swap in.
const CURATION_ALTERNATES: usize = 12;

/// Picks the best photos of the avatar's person from `paths` (files and folders), storing
/// nothing: the picked ones and some alternates come with a thumbnail, progress goes over
/// `on_progress`, and `cancel_curation` stops it (the reply is then a `cancelled` error).
#[tauri::command]
pub async fn curate_photos(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
    paths: Vec<String>,
    on_progress: tauri::ipc::Channel<CurateProgress>,
) -> Reply<Vec<CurateResult>> {
    let cancelled = state.curation_cancelled.clone();
    cancelled.store(false, Ordering::SeqCst);
    run(state, move |studio| {
        let paths: Vec<std::path::PathBuf> = paths.into_iter().map(Into::into).collect();
        let keep_going = || !cancelled.load(Ordering::SeqCst);
        let mut curation = studio.curate_photos(
            avatar_id.0,
            &paths,
            None,
            |progress| {
                let _ = on_progress.send(progress);
            },
            &keep_going,
        )?;
        studio.add_previews(&mut curation.results, CURATION_ALTERNATES)?;
        Ok(curation.results)
    })
    .await
}

/// Stops the running "Pick the best…".
#[tauri::command]
pub async fn cancel_curation(state: State<'_, AppState>) -> Reply<()> {
    state.curation_cancelled.store(true, Ordering::SeqCst);
    Ok(())
}

/// Opens the native picker for photos (or one folder); an empty list when cancelled.
#[tauri::command]
pub async fn pick_photos(
    window: tauri::Window,
    state: State<'_, AppState>,
    folder: bool,
) -> Reply<Vec<String>> {
    let words = crate::words::Words::of(state.studio().ok().as_deref());
    let dialog = rfd::AsyncFileDialog::new().set_parent(&window);
    let picked = if folder {
        dialog.pick_folder().await.map(|folder| vec![folder])
    } else {
        dialog
            .add_filter(
                words.plain("picker.photos"),
                &[
                    "jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "avif",
                ],
            )
            .pick_files()
            .await
    };
    Ok(picked
        .unwrap_or_default()
        .into_iter()
        .map(|file| file.path().display().to_string())
        .collect())
}

#[tauri::command]
pub async fn plan_training(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
    preset: Parsed<Preset>,
    steps: Option<u32>,
    learning_rate: Option<f64>,
) -> Reply<TrainingPlan> {
    let preset = preset.0;
    let overrides = Overrides {
        steps,
        learning_rate,
    };
    run_async(state, move |studio| async move {
        studio.plan_training(avatar_id.0, preset, overrides).await
    })
    .await
}

/// Writes the job for the plan the creator confirmed and follows it in the background; progress
/// arrives as events. A paid plan is confirmed once more in a native dialog; `conflict` when the
/// plan in force is no longer the confirmed one.
#[tauri::command]
pub async fn start_training(
    window: tauri::Window,
    state: State<'_, AppState>,
    plan: TrainingPlan,
) -> Reply<JobView> {
    if !plan.test_mode {
        let words = crate::words::Words::of(Some(state.studio()?.as_ref()));
        if !crate::confirm::paid_start_confirmed(&window, &plan, &words).await {
            return Err(crate::confirm::not_confirmed("paid training"));
        }
    }
    // The core follows the started job in the background.
    run_async(state, move |studio| async move {
        Ok(JobView::from(&studio.start_training(&plan).await?))
    })
    .await
}

#[tauri::command]
pub async fn training_status(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
) -> Reply<Option<JobView>> {
    run(state, move |studio| {
        Ok(studio
            .training_status(avatar_id.0)?
            .as_ref()
            .map(JobView::from))
    })
    .await
}

#[tauri::command]
pub async fn cancel_training(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
) -> Reply<JobView> {
    run(state, move |studio| {
        Ok(JobView::from(&studio.request_cancel(avatar_id.0)?))
    })
    .await
}

/// Which channel brings training news right now: the relay, or polling fal.
#[tauri::command]
pub async fn update_channel(state: State<'_, AppState>) -> Reply<UpdateChannel> {
    Ok(state.studio()?.update_channel())
}

/// "Check connection": the relay's health, a test event through it, and fal's webhook URL.
#[tauri::command]
pub async fn check_connection(state: State<'_, AppState>) -> Reply<ConnectionReport> {
    run_async(state, |studio| async move {
        Ok(studio.check_connection().await)
    })
    .await
}

#[tauri::command]
pub async fn settings(state: State<'_, AppState>) -> Reply<SettingsView> {
    run(state, Studio::settings).await
}

/// Saves settings by variable name; an empty value returns one to its default.
#[tauri::command]
pub async fn save_settings(
    app: AppHandle,
    window: tauri::Window,
    state: State<'_, AppState>,
    changes: BTreeMap<String, Option<String>>,
) -> Reply<SettingsView> {
    let studio = state.studio()?;
    let guarded = studio.guarded_settings_changes(&changes);
    if !guarded.is_empty() {
        let words = crate::words::Words::of(Some(studio.as_ref()));
        if !crate::confirm::settings_change_confirmed(&window, &guarded, &words).await {
            return Err(crate::confirm::not_confirmed("settings change"));
        }
    }
    run(state, move |studio| {
        let view = studio.save_settings(changes)?;
        crate::tray::reword(&app, studio);
        Ok(view)
    })
    .await
}

/// Stores a secret in the system keychain. The value never comes back to the UI.
#[tauri::command]
pub async fn set_secret(
    window: tauri::Window,
    state: State<'_, AppState>,
    name: String,
    value: String,
) -> Reply<SettingsView> {
    let studio = state.studio()?;
    let guarded = studio.guarded_secret_change(&name, &value)?;
    let words = crate::words::Words::of(Some(studio.as_ref()));
    if !crate::confirm::settings_change_confirmed(&window, &[guarded], &words).await {
        return Err(crate::confirm::not_confirmed("settings change"));
    }
    run(state, move |studio| {
        studio.set_secret(&name, &value)?;
        studio.settings()
    })
    .await
}

#[tauri::command]
pub async fn delete_secret(state: State<'_, AppState>, name: String) -> Reply<SettingsView> {
    run(state, move |studio| {
        studio.delete_secret(&name)?;
        studio.settings()
    })
    .await
}

/// fal, the storage, the keychain and the library, each asked once.
#[tauri::command]
pub async fn diagnose(state: State<'_, AppState>) -> Reply<Vec<Diagnosis>> {
    run_async(state, |studio| async move { Ok(studio.diagnose().await) }).await
}

/// The spending ledger by month and the monthly budget.
#[tauri::command]
pub async fn spending(state: State<'_, AppState>) -> Reply<Spending> {
    run(state, |studio| studio.spending()).await
}

/// Shows the avatar's trained model file in the system's file manager.
#[tauri::command]
pub async fn show_model(
    app: AppHandle,
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
) -> Reply<()> {
    use tauri_plugin_opener::OpenerExt;
    let model = run(state, move |studio| studio.model_file(avatar_id.0)).await?;
    app.opener()
        .reveal_item_in_dir(&model)
        .map_err(|error| ErrorReport::internal(format!("cannot open the file manager: {error}")))
}

/// A gallery image and where its file is, for the webview to load.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct GalleryEntry {
    pub image: GalleryImageView,
    pub file_path: String,
    /// The likeness in plain words, for the UI to say.
    pub band: Option<studio::LikenessBand>,
}

/// An avatar's gallery: its images, newest pack first, and its packs with their median likeness.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct GalleryView {
    pub images: Vec<GalleryEntry>,
    pub generations: Vec<studio::GenerationSummary>,
}

fn gallery_view(studio: &Studio, avatar: AvatarId) -> studio::Result<GalleryView> {
    Ok(GalleryView {
        images: studio
            .gallery(avatar)?
            .into_iter()
            .map(|image| GalleryEntry {
                file_path: studio.gallery_file(&image).display().to_string(),
                band: image.likeness.map(studio::likeness_band),
                image: GalleryImageView::from(&image),
            })
            .collect(),
        generations: studio.generations(avatar)?,
    })
}

/// The pack `request` gives, with its images and cost; nothing starts.
#[tauri::command]
pub async fn plan_generation(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
    request: studio::GenerationRequest,
) -> Reply<studio::GenerationPlan> {
    run_async(state, move |studio| async move {
        studio.plan_generation(avatar_id.0, &request).await
    })
    .await
}

/// Starts exactly the pack the creator confirmed; its images arrive as `generation` events.
#[tauri::command]
pub async fn start_generation(
    window: tauri::Window,
    state: State<'_, AppState>,
    plan: studio::GenerationPlan,
) -> Reply<GenerationView> {
    if !plan.test_mode {
        let words = crate::words::Words::of(Some(state.studio()?.as_ref()));
        if !crate::confirm::paid_pack_confirmed(&window, &plan, &words).await {
            return Err(crate::confirm::not_confirmed("paid sample pack"));
        }
    }
    run_async(state, move |studio| async move {
        Ok(GenerationView::from(&studio.start_generation(&plan).await?))
    })
    .await
}

#[tauri::command]
pub async fn cancel_generation(
    state: State<'_, AppState>,
    generation_id: Parsed<Uuid>,
) -> Reply<GenerationView> {
    run(state, move |studio| {
        Ok(GenerationView::from(
            &studio.cancel_generation(generation_id.0)?,
        ))
    })
    .await
}

#[tauri::command]
pub async fn gallery(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
) -> Reply<GalleryView> {
    run(state, move |studio| gallery_view(studio, avatar_id.0)).await
}

#[tauri::command]
pub async fn set_favourite(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
    image_id: Parsed<Uuid>,
    favourite: bool,
) -> Reply<GalleryView> {
    run(state, move |studio| {
        studio.set_favourite(image_id.0, favourite)?;
        gallery_view(studio, avatar_id.0)
    })
    .await
}

#[tauri::command]
pub async fn delete_gallery_image(
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
    image_id: Parsed<Uuid>,
) -> Reply<GalleryView> {
    run(state, move |studio| {
        studio.delete_gallery_image(image_id.0)?;
        gallery_view(studio, avatar_id.0)
    })
    .await
}

/// Shows a gallery image's file in the system's file manager.
#[tauri::command]
pub async fn show_gallery_image(
    app: AppHandle,
    state: State<'_, AppState>,
    image_id: Parsed<Uuid>,
) -> Reply<()> {
    use tauri_plugin_opener::OpenerExt;
    let id = image_id.0;
    let file = run(state, move |studio| {
        let image = studio
            .gallery_image(id)?
            .ok_or_else(|| studio::Error::NotFound(format!("there is no image {id}")))?;
        Ok(studio.gallery_file(&image))
    })
    .await?;
    app.opener()
        .reveal_item_in_dir(&file)
        .map_err(|error| ErrorReport::internal(format!("cannot open the file manager: {error}")))
}

/// Copies the favourites into a folder the creator picks; the files written, none when the
/// picker was closed.
#[tauri::command]
pub async fn export_favourites(
    window: tauri::Window,
    state: State<'_, AppState>,
    avatar_id: Parsed<AvatarId>,
) -> Reply<Vec<String>> {
    let Some(folder) = rfd::AsyncFileDialog::new()
        .set_parent(&window)
        .pick_folder()
        .await
    else {
        return Ok(Vec::new());
    };
    let folder = folder.path().to_path_buf();
    let written = run(state, move |studio| {
        studio.export_favourites(avatar_id.0, &folder)
    })
    .await?;
    Ok(written
        .into_iter()
        .map(|path| path.display().to_string())
        .collect())
}
