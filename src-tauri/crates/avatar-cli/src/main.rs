//! `avatar-cli`: the library from a terminal or a script. With `--json` every command prints JSON
//! only: results on stdout, and on failure one `{"code","message"}` object on stderr.

mod training;
mod words;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;
use studio::{
    Avatar, Config, ErrorReport, Gender, NewAvatar, Overrides, PhotoResult, Ports, Preset, Studio,
    TrainingType, Verdict,
};

#[derive(Parser)]
#[command(
    name = "avatar-cli",
    version,
    about = "Manage Avatar Studio avatars from the command line"
)]
struct Cli {
    /// Library folder (default: $AVATAR_STUDIO_LIBRARY, then the platform's data directory).
    #[arg(long, global = true, value_name = "DIR")]
    library: Option<PathBuf>,
    /// Print JSON only.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// What a training run is: the trainer, the preset and any override of it.
#[derive(clap::Args)]
struct RunChoice {
    /// The trainer (flux1-portrait, flux1-fast); the avatar type's own by default.
    #[arg(long)]
    trainer: Option<String>,
    #[arg(long, default_value = "balanced", value_parser = parse_preset, value_name = "fast|balanced|quality")]
    preset: Preset,
    /// Training steps instead of the preset's.
    #[arg(long)]
    steps: Option<u32>,
    /// Learning rate instead of the preset's (portrait only).
    #[arg(long)]
    learning_rate: Option<f64>,
}

impl RunChoice {
    /// The preset and overrides, once the trainer is known to train the avatar.
    fn checked(self, studio: &Studio, avatar: &str) -> Result<(Preset, Overrides), ErrorReport> {
        if let Some(trainer) = &self.trainer {
            studio.check_trainer(avatar, trainer)?;
        }
        let overrides = Overrides {
            steps: self.steps,
            learning_rate: self.learning_rate,
        };
        Ok((self.preset, overrides))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create, list, show, rename and delete avatars.
    #[command(subcommand)]
    Avatar(AvatarCommand),
    /// Check, add, list and remove photos.
    #[command(subcommand)]
    Photos(PhotosCommand),
    /// Show the plan a training would confirm (trainer, steps, time, cost and where the price
    /// came from), starting nothing.
    Plan {
        avatar: String,
        #[command(flatten)]
        run: RunChoice,
    },
    /// Train an avatar on fal (or simulated, in test mode).
    Train {
        avatar: String,
        #[command(flatten)]
        run: RunChoice,
        /// Start a paid training without asking.
        #[arg(long)]
        yes: bool,
        /// Follow the training to its end instead of returning once fal holds it.
        #[arg(long)]
        wait: bool,
    },
    /// Make a sample pack with the avatar's trained model: a built-in pack, your own prompts, or
    /// both. The pack is followed to its end before the command returns (in test mode its
    /// images are made on this device).
    Generate {
        avatar: String,
        /// A built-in pack (portrait_starter, style_starter); the avatar type's own by default.
        #[arg(long)]
        pack: Option<String>,
        /// A prompt of your own (repeat for more); the trigger phrase is added when missing.
        #[arg(long = "prompt")]
        prompts: Vec<String>,
        /// Images per prompt (1–4).
        #[arg(long)]
        count: Option<u32>,
        /// The first image's seed (each next image adds one).
        #[arg(long)]
        seed: Option<u64>,
        /// Start a paid pack without asking.
        #[arg(long)]
        yes: bool,
    },
    /// An avatar's generated images, newest pack first.
    Gallery { avatar: String },
    /// Show an avatar's latest training.
    Status {
        avatar: String,
        /// Follow it to its end.
        #[arg(long)]
        wait: bool,
    },
    /// Cancel an avatar's training and follow it until fal confirms the end.
    Cancel { avatar: String },
    /// List every training, newest first. Reading only, unless `--advance`.
    Jobs {
        /// Move every unfinished training on one step first (upload, submit, poll, download)
        /// and carry every unfinished sample pack to its end, reporting any error met on the way.
        #[arg(long)]
        advance: bool,
    },
    /// The spending ledger: paid trainings by month, what fal billed where it could be read,
    /// and the monthly budget. Reading only.
    Spend,
    /// Check the webhook relay: its health, a test event through it, and fal's webhook URL.
    CheckConnection,
    /// Keep the fal key, the S3 secret key and the relay token in the system keychain.
    #[command(subcommand)]
    Secret(SecretCommand),
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Store a secret (fal-key, s3-secret-key, relay-token), read from standard input so it
    /// never shows in the process list or the shell history.
    Set { name: String },
    /// Forget a stored secret.
    Delete { name: String },
    /// Which secrets are set, and whether from the environment or the keychain. Never the values.
    Status,
}

fn parse_preset(text: &str) -> Result<Preset, String> {
    Preset::parse(text).ok_or_else(|| format!("{text:?} is not one of: fast, balanced, quality"))
}

#[derive(Subcommand)]
enum PhotosCommand {
    /// Check photos and folders and store the accepted ones in an avatar.
    Add {
        avatar: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Check photos and folders for an avatar type without storing anything.
    Check {
        #[arg(long = "type", value_name = "portrait|style")]
        training_type: TrainingType,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Pick the best, most varied photos of one person from files and folders of any size
    /// (a camera roll): other people, copies and weak photos are left out.
    Curate {
        avatar: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// How many to pick (default: the room left in the avatar, AVATAR_MAX_PHOTOS at most).
        #[arg(long)]
        count: Option<usize>,
        /// Store the picked photos in the avatar through the normal import.
        #[arg(long)]
        add: bool,
        /// Print the time spent in each stage on stderr, as JSON.
        #[arg(long, hide = true)]
        times: bool,
    },
    /// Watch a folder and add the photos that appear in it, until interrupted (Ctrl-C).
    Watch { avatar: String, folder: PathBuf },
    /// List an avatar's photos, each with its pose, framing and light.
    List { avatar: String },
    /// What a portrait avatar's photos cover (poses, framings, light) and what they lack.
    Coverage { avatar: String },
    /// Remove a photo from an avatar (photo id or a unique prefix).
    Remove { avatar: String, photo: String },
}

#[derive(Subcommand)]
enum AvatarCommand {
    /// Create an avatar.
    Create {
        #[arg(long)]
        name: String,
        /// portrait (people) or style (styles, objects, places).
        #[arg(long = "type", value_name = "portrait|style")]
        training_type: TrainingType,
        #[arg(long, value_name = "male|female|other")]
        gender: Gender,
    },
    /// List all avatars.
    List,
    /// Show one avatar (full id or a unique prefix).
    Show { id: String },
    /// Rename an avatar.
    Rename { id: String, name: String },
    /// Delete an avatar and its photos.
    Delete { id: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if json {
                eprintln!("{}", json_text(&failure));
            } else {
                eprintln!("error: {}", failure.message);
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), ErrorReport> {
    let studio = Studio::open(Config::from_env(cli.library)?, Ports::system())?;
    let out = Output { json: cli.json };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|error| ErrorReport::internal(format!("cannot start: {error}")))?;
    // Only commands that exist to move trainings on do so; the others only read or change
    // the library, and never upload, submit or download.
    let moves_jobs = matches!(
        cli.command,
        Command::Train { .. } | Command::Cancel { .. } | Command::Jobs { advance: true }
    );
    if moves_jobs {
        runtime.block_on(training::advance_unfinished(&studio, &out))?;
    }
    if matches!(cli.command, Command::Jobs { advance: true }) {
        runtime.block_on(training::advance_unfinished_packs(&studio, &out))?;
    }
    match cli.command {
        Command::Plan { avatar, run } => {
            let (preset, overrides) = run.checked(&studio, &avatar)?;
            let plan = runtime.block_on(studio.plan_training(&avatar, preset, overrides))?;
            if out.json {
                out.print_json(&plan);
            } else {
                out.line(&training::describe_plan(&plan));
            }
        }
        Command::Train {
            avatar,
            run,
            yes,
            wait,
        } => {
            let (preset, overrides) = run.checked(&studio, &avatar)?;
            let options = training::TrainOptions {
                avatar,
                preset,
                overrides,
                yes,
                wait,
            };
            runtime.block_on(training::train(&studio, &out, options))?;
        }
        Command::Generate {
            avatar,
            pack,
            prompts,
            count,
            seed,
            yes,
        } => {
            let request = studio::GenerationRequest {
                pack,
                prompts,
                count,
                seed,
            };
            runtime.block_on(generate(&studio, &out, &avatar, &request, yes))?;
        }
        Command::Gallery { avatar } => gallery(&studio, &out, &avatar)?,
        Command::Status { avatar, wait } => {
            runtime.block_on(training::status(&studio, &out, &avatar, wait))?;
        }
        Command::Cancel { avatar } => runtime.block_on(training::cancel(&studio, &out, &avatar))?,
        Command::Jobs { .. } => training::jobs(&studio, &out)?,
        Command::Spend => training::spend(&studio, &out)?,
        Command::Secret(command) => secret(&studio, &out, command)?,
        Command::CheckConnection => runtime.block_on(training::check_connection(&studio, &out))?,
        Command::Avatar(command) => match command {
            AvatarCommand::Create {
                name,
                training_type,
                gender,
            } => out.avatar(&studio.create_avatar(NewAvatar {
                name,
                gender,
                training_type,
            })?),
            AvatarCommand::List => out.avatars(&studio.list_avatars()?),
            AvatarCommand::Show { id } => out.avatar(&studio.avatar(&id)?),
            AvatarCommand::Rename { id, name } => out.avatar(&studio.rename_avatar(&id, &name)?),
            AvatarCommand::Delete { id } => {
                let deleted = runtime.block_on(studio.delete_avatar(&id))?;
                if out.json {
                    out.print_json(&serde_json::json!({
                        "deleted": deleted.avatar.id,
                        "photos": deleted.photos,
                        "files": deleted.files,
                        "models": deleted.models,
                        "s3_objects": deleted.s3_objects,
                    }));
                } else {
                    out.line(&format!(
                        "deleted {} ({}): {} photos, {} files, {} models, {} objects in S3",
                        deleted.avatar.name,
                        deleted.avatar.id,
                        deleted.photos,
                        deleted.files,
                        deleted.models,
                        deleted.s3_objects
                    ));
                }
            }
        },
        Command::Photos(command) => match command {
            PhotosCommand::Add { avatar, paths } => {
                let mut progress = Progress::new(&out, &paths);
                let readiness = studio.add_photos(&avatar, &paths, |result| {
                    progress.clear();
                    out.photo_result(&result);
                    progress.advance();
                })?;
                progress.clear();
                if !out.json {
                    out.line(&format!(
                        "{} / {}–{} photos{}",
                        readiness.photos,
                        readiness.min,
                        readiness.max,
                        if readiness.ready {
                            ", ready to train"
                        } else {
                            ""
                        }
                    ));
                }
            }
            PhotosCommand::Check {
                training_type,
                paths,
            } => {
                let mut progress = Progress::new(&out, &paths);
                if training_type == TrainingType::Portrait {
                    // Portraits are judged as one set (is every photo the same person?), so
                    // the lines come once every photo is checked.
                    let mut results = Vec::new();
                    studio.check_photos(&paths, training_type, |result| {
                        results.push(result);
                        progress.advance();
                    })?;
                    progress.clear();
                    studio::judge_portrait_set(&mut results);
                    for result in &results {
                        out.photo_result(result);
                    }
                } else {
                    studio.check_photos(&paths, training_type, |result| {
                        progress.clear();
                        out.photo_result(&result);
                        progress.advance();
                    })?;
                    progress.clear();
                }
            }
            PhotosCommand::Curate {
                avatar,
                paths,
                count,
                add,
                times,
            } => curate(&studio, &out, &avatar, &paths, count, add, times)?,
            PhotosCommand::Watch { avatar, folder } => {
                if !out.json {
                    eprintln!("watching {} (Ctrl-C to stop)", folder.display());
                }
                // Stopping is the user's interrupt; imports are crash-safe, so nothing is lost.
                studio.watch_folder(&avatar, &folder, &|| true, |result| {
                    out.photo_result(&result)
                })?;
            }
            PhotosCommand::List { avatar } => {
                let photos = studio.list_photos(&avatar)?;
                let looks: std::collections::HashMap<_, _> =
                    studio.photo_looks(&avatar)?.into_iter().collect();
                let look_of =
                    |photo: &studio::Photo| looks.get(&photo.id).copied().unwrap_or_default();
                if out.json {
                    let listed: Vec<serde_json::Value> = photos
                        .iter()
                        .map(|photo| with_look(photo, look_of(photo)))
                        .collect();
                    out.print_json(&listed);
                } else {
                    for photo in &photos {
                        out.line(&format!(
                            "{}  {}  {}×{}  {} face(s)  quality {:.2}  {}",
                            photo.id,
                            photo.original_name,
                            photo.width,
                            photo.height,
                            photo.face_count,
                            photo.quality_score.unwrap_or_default(),
                            words::look(&look_of(photo)),
                        ));
                    }
                }
            }
            PhotosCommand::Coverage { avatar } => {
                let coverage = studio.readiness(&avatar)?.coverage.ok_or_else(|| {
                    studio::Error::InvalidInput(
                        "coverage is judged for portrait avatars only".to_string(),
                    )
                })?;
                if out.json {
                    let advice: Vec<String> = coverage.missing.iter().map(words::gap).collect();
                    let mut value = serde_json::to_value(&coverage).unwrap_or_default();
                    value["advice"] = serde_json::json!(advice);
                    out.print_json(&value);
                } else {
                    out.line(&words::coverage(&coverage));
                }
            }
            PhotosCommand::Remove { avatar, photo } => {
                let removed = studio.remove_photo(&avatar, &photo)?;
                if out.json {
                    out.print_json(&serde_json::json!({"removed": removed.id}));
                } else {
                    out.line(&format!(
                        "removed {} ({})",
                        removed.original_name, removed.id
                    ));
                }
            }
        },
    }
    Ok(())
}

struct Output {
    json: bool,
}

/// A one-line progress bar on stderr, drawn only for a person at a terminal (never with --json).
struct Progress {
    total: usize,
    done: usize,
    visible: bool,
}

impl Progress {
    const WIDTH: usize = 30;

    fn new(out: &Output, paths: &[PathBuf]) -> Self {
        let visible = !out.json && std::io::stderr().is_terminal();
        let total = if visible {
            studio::count_inputs(paths, &|| true)
        } else {
            0
        };
        Self {
            total,
            done: 0,
            visible,
        }
    }

    fn advance(&mut self) {
        self.done += 1;
        if self.visible && self.total > 0 {
            let filled = Self::WIDTH * self.done.min(self.total) / self.total;
            eprint!(
                "\r[{}{}] {}/{} photos checked",
                "#".repeat(filled),
                ".".repeat(Self::WIDTH - filled),
                self.done,
                self.total
            );
        }
    }

    /// Clears the bar so the next line of results starts clean.
    fn clear(&self) {
        if self.visible && self.done > 0 {
            eprint!("\r{}\r", " ".repeat(Self::WIDTH + 40));
        }
    }
}

impl Output {
    fn avatar(&self, avatar: &Avatar) {
        if self.json {
            self.print_json(&studio::AvatarView::from(avatar));
        } else {
            self.line(&describe(avatar));
        }
    }

    fn avatars(&self, avatars: &[Avatar]) {
        if self.json {
            let views: Vec<studio::AvatarView> = avatars.iter().map(Into::into).collect();
            self.print_json(&views);
        } else if avatars.is_empty() {
            self.line("no avatars yet: create one with `avatar-cli avatar create`");
        } else {
            for avatar in avatars {
                self.line(&describe(avatar));
            }
        }
    }

    /// One line per photo, printed as soon as its check is done.
    fn photo_result(&self, result: &PhotoResult) {
        if self.json {
            let mut line = serde_json::to_value(result)
                .unwrap_or_else(|error| unreachable!("plain data always serialises: {error}"));
            line["message"] = serde_json::json!(words::verdict(result));
            self.print_json(&line);
        } else if result.verdict == Verdict::Accepted {
            let replaced = if result.replaces.is_some() {
                format!(": {}", words::verdict(result))
            } else {
                String::new()
            };
            self.line(&format!(
                "accepted  {}  ({}×{}, {} face(s), quality {:.2}){replaced}",
                result.path,
                result.width,
                result.height,
                result.faces,
                result.quality_score.unwrap_or_default()
            ));
        } else {
            self.line(&format!(
                "rejected  {}: {}",
                result.path,
                words::verdict(result)
            ));
        }
    }

    pub fn print_json(&self, value: &impl Serialize) {
        self.line(&json_text(value));
    }

    pub fn line(&self, text: &str) {
        // A closed pipe (`avatar-cli ... | head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout(), "{text}");
    }
}

/// `generate`: plans, asks before a paid pack, starts it and follows it to its end.
async fn generate(
    studio: &Studio,
    out: &Output,
    avatar: &str,
    request: &studio::GenerationRequest,
    yes: bool,
) -> Result<(), ErrorReport> {
    let plan = studio.plan_generation(avatar, request).await?;
    if !out.json {
        out.line(&format!(
            "{}: {} images ({} prompts × {}), {}",
            plan.avatar_name,
            plan.images,
            plan.prompts.len(),
            plan.images_per_prompt,
            if plan.test_mode {
                "test mode: simulated on this device, no cost".to_string()
            } else {
                format!("about ${:.2}", plan.cost_usd)
            }
        ));
    }
    if !plan.test_mode && !yes && !training::confirm(out, "sample pack")? {
        return Err(ErrorReport {
            code: studio::ErrorCode::Cancelled,
            message: "not started".to_string(),
        });
    }
    let generation = studio.start_generation(&plan).await?;
    let total = plan.images;
    let mut made = 0;
    let generation = studio
        .advance_generation(generation.id, |image| {
            made += 1;
            if !out.json {
                let likeness = image
                    .likeness
                    .map(|score| format!("likeness {score:.2}"))
                    .unwrap_or_else(|| "no face".to_string());
                out.line(&format!("[{made}/{total}] {}  {likeness}", image.prompt));
            }
        })
        .await?;
    let summary = studio
        .generations(avatar)?
        .into_iter()
        .find(|summary| summary.generation.id == generation.id);
    if out.json {
        let images: Vec<serde_json::Value> = studio
            .gallery(avatar)?
            .iter()
            .filter(|image| image.generation_id == generation.id)
            .map(|image| gallery_entry(studio, image))
            .collect();
        out.print_json(&serde_json::json!({
            "generation": studio::GenerationView::from(&generation),
            "median_likeness": summary.as_ref().and_then(|summary| summary.median_likeness),
            "images": images,
        }));
    } else {
        out.line(&format!(
            "{}: {} images in the gallery{}",
            generation.state,
            summary.as_ref().map_or(0, |summary| summary.images),
            summary
                .and_then(|summary| summary.median_likeness)
                .map(|median| format!(", median likeness {median:.2}"))
                .unwrap_or_default()
        ));
    }
    Ok(())
}

/// `gallery`: every image with its file, prompt, seed, likeness and training.
fn gallery(studio: &Studio, out: &Output, avatar: &str) -> Result<(), ErrorReport> {
    let images = studio.gallery(avatar)?;
    if out.json {
        let listed: Vec<serde_json::Value> = images
            .iter()
            .map(|image| gallery_entry(studio, image))
            .collect();
        out.print_json(&listed);
    } else {
        for image in &images {
            out.line(&format!(
                "{}  {}  seed {}  {}{}  {}",
                image.id,
                studio.gallery_file(image).display(),
                image.seed,
                image
                    .likeness
                    .map(|score| format!("likeness {score:.2}"))
                    .unwrap_or_else(|| "no likeness".to_string()),
                if image.favourite { "  ★" } else { "" },
                image.prompt
            ));
        }
    }
    Ok(())
}

/// One image as `gallery --json` shows it: its view, its file and the likeness in words.
fn gallery_entry(studio: &Studio, image: &studio::GalleryImage) -> serde_json::Value {
    let mut value = serde_json::to_value(studio::GalleryImageView::from(image)).unwrap_or_default();
    value["path"] = serde_json::json!(studio.gallery_file(image));
    value["training"] = serde_json::json!(image.training_job_id);
    value["band"] = serde_json::json!(image.likeness.map(studio::likeness_band));
    value
}

/// A photo as `photos list --json` shows it: its view with its pose, framing and light.
fn with_look(photo: &studio::Photo, look: studio::Look) -> serde_json::Value {
    let mut value = serde_json::to_value(studio::PhotoView::from(photo)).unwrap_or_default();
    if let (Some(object), Ok(serde_json::Value::Object(look))) =
        (value.as_object_mut(), serde_json::to_value(look))
    {
        object.extend(look);
    }
    value
}

fn describe(avatar: &Avatar) -> String {
    format!(
        "{}  {}  {} {}  {}  {} photos",
        avatar.id,
        avatar.name,
        avatar.training_type,
        avatar.gender,
        avatar.status,
        avatar.photo_count
    )
}

fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|error| unreachable!("plain data always serialises: {error}"))
}

/// `photos curate`: one line per file, whether picked and why; `--add` stores the picked ones.
fn curate(
    studio: &Studio,
    out: &Output,
    avatar: &str,
    paths: &[PathBuf],
    count: Option<usize>,
    add: bool,
    times: bool,
) -> Result<(), ErrorReport> {
    let mut progress = Progress::new(out, paths);
    let curation = studio.curate_photos(avatar, paths, count, |_| progress.advance(), &|| true)?;
    progress.clear();
    let mut added = std::collections::HashMap::new();
    if add {
        let picked: Vec<PathBuf> = curation
            .results
            .iter()
            .filter(|result| result.picked)
            .map(|result| PathBuf::from(&result.path))
            .collect();
        if !picked.is_empty() {
            studio.add_photos(avatar, &picked, |result| {
                added.insert(result.path.clone(), result);
            })?;
        }
    }
    for result in &curation.results {
        let stored = added.get(&result.path);
        // Curation words its own decisions; a photo the checks refused is said in their words.
        let why = if result.why.is_empty() {
            words::reasons(&result.reasons, None)
        } else {
            result.why.clone()
        };
        if out.json {
            let mut line = serde_json::to_value(result)
                .unwrap_or_else(|error| unreachable!("plain data always serialises: {error}"));
            line["why"] = serde_json::json!(why);
            if add {
                line["added"] =
                    serde_json::json!(stored.is_some_and(|photo| photo.photo_id.is_some()));
                line["photo_id"] = serde_json::json!(stored.and_then(|photo| photo.photo_id));
                if let Some(stored) = stored.filter(|photo| photo.photo_id.is_none()) {
                    line["add_reasons"] = serde_json::json!(stored.reasons);
                }
            }
            out.print_json(&line);
        } else if result.picked {
            let added = match stored {
                Some(photo) if photo.photo_id.is_some() => ", added",
                Some(_) => ", not added",
                None => "",
            };
            out.line(&format!(
                "picked    {}  ({}{added})",
                result.path,
                why.trim_start_matches("picked: ")
            ));
        } else {
            out.line(&format!("skipped   {}: {why}", result.path));
        }
    }
    if !out.json {
        let picked = curation
            .results
            .iter()
            .filter(|result| result.picked)
            .count();
        out.line(&format!(
            "{picked} of {} photos picked",
            curation.results.len()
        ));
    }
    if times {
        let seconds = |duration: std::time::Duration| duration.as_secs_f64();
        eprintln!(
            "{}",
            serde_json::json!({
                "files": curation.results.len(),
                "checking_wall_s": seconds(curation.checking),
                "picking_wall_s": seconds(curation.picking),
                "cpu_s": {
                    "decode": seconds(curation.stages.decode),
                    "detect": seconds(curation.stages.detect),
                    "identity": seconds(curation.stages.identity),
                    "measure": seconds(curation.stages.measure),
                },
            })
        );
    }
    Ok(())
}

fn secret(studio: &Studio, out: &Output, command: SecretCommand) -> Result<(), ErrorReport> {
    match command {
        SecretCommand::Set { name } => {
            let mut value = String::new();
            std::io::stdin().read_line(&mut value).map_err(|error| {
                ErrorReport::internal(format!("cannot read the secret: {error}"))
            })?;
            studio.set_secret(&name, value.trim_end_matches(['\r', '\n']))?;
            out.line(&format!("{name} is stored in the keychain"));
        }
        SecretCommand::Delete { name } => {
            studio.delete_secret(&name)?;
            out.line(&format!("{name} is no longer in the keychain"));
        }
        SecretCommand::Status => {
            let statuses = studio.secret_status();
            if out.json {
                out.print_json(&statuses);
            } else {
                for status in &statuses {
                    let state = match (status.source, &status.problem) {
                        (Some(source), _) => format!("set ({source:?})"),
                        (None, Some(problem)) => format!("unknown: {problem}"),
                        (None, None) => "not set".to_string(),
                    };
                    out.line(&format!("{}: {state}", status.name));
                }
            }
        }
    }
    Ok(())
}
