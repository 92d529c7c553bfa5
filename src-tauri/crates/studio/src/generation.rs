//! Trying the avatar: a sample pack made with its trained model, kept in a gallery, each image of
//! a portrait scored for how much it looks like the person (the identity model that judges the
//! training set). A generation is written before anything is made and carried to its end by any
//! later start; each place in the pack holds one image, so nothing is made twice.
//!
//! Test mode makes the images on the device from the avatar's own photos (marked as simulated);
//! otherwise each prompt is one request to fal's LoRA inference endpoint (`fal_pack.rs`).

use std::path::PathBuf;

use library::{GalleryImage, Generation, GenerationInsert, GenerationState, JobFailure, JobState};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::error::Fence;
use crate::training::TRIGGER_PHRASE;
use crate::{AvatarId, AvatarRef, Error, JobId, PhotoId, Result, Studio, TrainingType};

/// fal's LoRA inference endpoint (fal-protocol.md §4.4), unless `FAL_GENERATION_ENDPOINT` says
/// otherwise.
pub const DEFAULT_GENERATION_ENDPOINT: &str = "fal-ai/flux-lora";
/// `landscape_4_3` is fal's default; portraits want the other way up.
const IMAGE_SIZE: &str = "portrait_4_3";
/// Images per prompt fal accepts in one request.
const MAX_IMAGES_PER_PROMPT: u32 = 4;
/// The largest seed a request may carry: fal's seeds are signed 64-bit integers (UNCONFIRMED
/// beyond the schema's "integer"); a pack's seeds count up from its first.
const MAX_SEED: u64 = i64::MAX as u64;
/// Prompts in one pack.
const MAX_PROMPTS: usize = 16;
/// `portrait_4_3` is 768 × 1024 pixels.
const IMAGE_MEGAPIXELS: f64 = 768.0 * 1024.0 / 1e6;

/// Where a pack's images are made: fal's LoRA inference ([`FalSampleMaker`], `fal_pack.rs`) or,
/// in test mode, the device ([`SimulatedSampleMaker`]). A pack keeps the maker it was planned
/// with (`Generation::test_mode`).
#[async_trait::async_trait]
pub(crate) trait SampleMaker: Send + Sync {
    /// Fills each place of the pack not filled yet, then ends the pack.
    async fn fill(
        &self,
        studio: &Studio,
        generation: Generation,
        pack: &PackContext,
        // Named: async-trait would otherwise tie the image's borrow to the call.
        on_image: &mut (dyn for<'image> FnMut(&'image GalleryImage) + Send),
    ) -> Result<Generation>;
}

/// Makes a pack's images with fal's LoRA inference.
pub(crate) struct FalSampleMaker;

/// Test mode: each image made on the device from one of the avatar's own photos.
struct SimulatedSampleMaker;

#[async_trait::async_trait]
impl SampleMaker for SimulatedSampleMaker {
    async fn fill(
        &self,
        studio: &Studio,
        generation: Generation,
        pack: &PackContext,
        on_image: &mut (dyn for<'image> FnMut(&'image GalleryImage) + Send),
    ) -> Result<Generation> {
        let done = studio.filled_places(&generation)?;
        let places = generation.prompts.len() as u32 * generation.images_per_prompt;
        for position in (0..places).filter(|position| !done.contains(position)) {
            if studio.load_generation(generation.id)?.cancel_requested {
                return studio.end_generation(generation, GenerationState::Cancelled, None);
            }
            let prompt = &generation.prompts[(position / generation.images_per_prompt) as usize];
            let seed = generation.seed + u64::from(position);
            let source = &pack.photos[position as usize % pack.photos.len()];
            let path = studio.library.photo_path(&source.file_hash, &source.format);
            let made = std::fs::read(&path)
                .map_err(|error| error.to_string())
                .and_then(|bytes| photos::simulated_sample(&bytes, seed, prompt));
            let bytes = match made {
                Ok(bytes) => bytes,
                Err(detail) => {
                    let failure = JobFailure::Other { detail };
                    return studio.end_generation(
                        generation,
                        GenerationState::Failed,
                        Some(failure),
                    );
                }
            };
            let sample = Sample {
                position,
                prompt,
                seed,
                flagged: false,
                simulated: true,
            };
            if let Some(image) = studio.keep_image(&generation, pack, &sample, &bytes)? {
                on_image(&image);
            }
        }
        studio.end_generation(generation, GenerationState::Completed, None)
    }
}

impl Studio {
    /// The maker a pack was planned with.
    fn sample_maker(&self, test_mode: bool) -> &'static dyn SampleMaker {
        if test_mode {
            &SimulatedSampleMaker
        } else {
            &FalSampleMaker
        }
    }
}

/// What judging a pack's images needs.
pub(crate) struct PackContext {
    portrait: bool,
    photos: Vec<library::Photo>,
    training: Vec<photos::TrainingPhoto>,
    checker: photos::Checker,
}

/// One image's place and what made it.
pub(crate) struct Sample<'a> {
    pub position: u32,
    pub prompt: &'a str,
    pub seed: u64,
    pub flagged: bool,
    pub simulated: bool,
}

/// A built-in prompt pack. The UI names it (`pack.<name>`); the prompts go to the model as they
/// are, with the trigger phrase standing for the avatar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
pub struct Pack {
    pub name: &'static str,
    pub training_type: TrainingType,
    /// Fixed, so two trainings of one avatar are compared on the same images.
    #[ts(type = "number")]
    pub seed: u64,
    #[ts(type = "Array<string>")]
    pub prompts: &'static [&'static str],
}

pub const PACKS: &[Pack] = &[
    Pack {
        name: "portrait_starter",
        training_type: TrainingType::Portrait,
        seed: 4_201,
        prompts: &[
            "a studio headshot of TOK, soft key light, plain grey backdrop, 85mm lens",
            "TOK outdoors in a park in golden-hour light, candid smile",
            "TOK in a dark business suit in a modern office, professional portrait",
            "TOK in a casual sweater at a cafe table, natural window light",
            "a profile view of TOK looking to the side, rim light",
            "a full-body photo of TOK walking down a city street",
            "an oil painting portrait of TOK, visible brush strokes",
            "TOK as a watercolour illustration, soft pastel colours",
        ],
    },
    Pack {
        name: "style_starter",
        training_type: TrainingType::Style,
        seed: 4_202,
        prompts: &[
            "a city street at dusk in the style of TOK",
            "a bowl of fruit on a wooden table in the style of TOK",
            "a mountain landscape with a lake in the style of TOK",
            "a portrait of an old sailor in the style of TOK",
            "a cat asleep on a windowsill in the style of TOK",
        ],
    },
];

/// What the creator asks for: a pack, or their own prompts, or both.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, TS)]
pub struct GenerationRequest {
    pub pack: Option<String>,
    #[serde(default)]
    pub prompts: Vec<String>,
    /// Images per prompt (1–4); 1 by default.
    pub count: Option<u32>,
    #[ts(type = "number | null")]
    pub seed: Option<u64>,
}

/// What a generation will be, shown before it starts and handed back to start it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct GenerationPlan {
    pub avatar_id: AvatarId,
    pub avatar_name: String,
    /// The training whose model makes the images.
    pub training_job_id: JobId,
    pub pack: String,
    pub prompts: Vec<String>,
    pub images_per_prompt: u32,
    #[ts(type = "number")]
    pub seed: u64,
    pub image_size: String,
    pub endpoint: String,
    pub images: u32,
    /// Zero in test mode.
    pub cost_usd: f64,
    /// `none` in test mode.
    pub price_source: String,
    pub test_mode: bool,
}

/// A pack's images and their median likeness, for comparing trainings.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct GenerationSummary {
    pub generation: crate::GenerationView,
    pub images: u32,
    /// The median of the images' likeness; `None` when no image has one.
    pub median_likeness: Option<f32>,
    pub median_band: Option<photos::LikenessBand>,
    /// The preset of the training that made the model, to compare trainings by.
    pub training_preset: Option<String>,
}

impl Studio {
    pub fn packs(&self) -> &'static [Pack] {
        PACKS
    }

    /// The generation `request` gives for the avatar's newest trained model, with its cost;
    /// nothing starts.
    pub async fn plan_generation<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
        request: &GenerationRequest,
    ) -> Result<GenerationPlan> {
        let mut plan = self.plan_generation_offline(avatar_reference, request)?;
        let (cost_usd, source) = self
            .generation_cost(&plan.endpoint, plan.images, IMAGE_MEGAPIXELS)
            .await;
        plan.cost_usd = cost_usd;
        plan.price_source = source.as_str().to_string();
        Ok(plan)
    }

    fn plan_generation_offline<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
        request: &GenerationRequest,
    ) -> Result<GenerationPlan> {
        let avatar = self.avatar(avatar_reference)?;
        let training = self
            .library
            .jobs()?
            .into_iter()
            .filter(|job| job.avatar_id == avatar.id && job.state == JobState::Completed)
            .find(|job| job.model_path.is_some())
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "{} has no trained model yet: train it first",
                    avatar.name
                ))
            })?;
        let pack = match request.pack.as_deref() {
            Some(name) => Some(PACKS.iter().find(|pack| pack.name == name).ok_or_else(|| {
                let names: Vec<&str> = PACKS.iter().map(|pack| pack.name).collect();
                Error::InvalidInput(format!(
                    "{name:?} is not a pack; the packs are: {}",
                    names.join(", ")
                ))
            })?),
            None if request.prompts.is_empty() => Some(
                PACKS
                    .iter()
                    .find(|pack| pack.training_type == avatar.training_type)
                    .unwrap_or(&PACKS[0]),
            ),
            None => None,
        };
        let mut prompts: Vec<String> = pack
            .map(|pack| {
                pack.prompts
                    .iter()
                    .map(|prompt| prompt.to_string())
                    .collect()
            })
            .unwrap_or_default();
        for prompt in &request.prompts {
            let prompt = prompt.trim();
            if prompt.is_empty() {
                return Err(Error::InvalidInput("a prompt is empty".into()));
            }
            // The trigger phrase is what makes the image of this avatar.
            prompts.push(if prompt.contains(TRIGGER_PHRASE) {
                prompt.to_string()
            } else {
                format!("{TRIGGER_PHRASE}, {prompt}")
            });
        }
        if prompts.len() > MAX_PROMPTS {
            return Err(Error::InvalidInput(format!(
                "{} prompts is more than one pack holds ({MAX_PROMPTS})",
                prompts.len()
            )));
        }
        let images_per_prompt = request.count.unwrap_or(1);
        if !(1..=MAX_IMAGES_PER_PROMPT).contains(&images_per_prompt) {
            return Err(Error::InvalidInput(format!(
                "{images_per_prompt} images per prompt is outside 1–{MAX_IMAGES_PER_PROMPT}"
            )));
        }
        let images = prompts.len() as u32 * images_per_prompt;
        let seed = request
            .seed
            .or(pack.map(|pack| pack.seed))
            .unwrap_or(PACKS[0].seed);
        // Each image's seed follows the first; fal takes a signed 64-bit integer.
        if seed > MAX_SEED - u64::from(images) {
            return Err(Error::InvalidInput(format!(
                "the seed {seed} is too large: at most {}",
                MAX_SEED - u64::from(images)
            )));
        }
        Ok(GenerationPlan {
            avatar_id: avatar.id,
            avatar_name: avatar.name,
            training_job_id: training.id,
            pack: pack.map_or("custom", |pack| pack.name).to_string(),
            prompts,
            images_per_prompt,
            seed,
            image_size: IMAGE_SIZE.to_string(),
            endpoint: self.config().generation_endpoint.clone(),
            images,
            cost_usd: 0.0,
            price_source: "none".to_string(),
            test_mode: self.config().test_mode,
        })
    }

    /// Starts exactly the plan the creator confirmed: written first (with its requests, inside
    /// the monthly budget), then made in the background, or by [`Studio::advance_generation`].
    pub async fn start_generation(&self, confirmed: &GenerationPlan) -> Result<Generation> {
        // The plan again from the same choices: a pack, then the creator's own prompts.
        let pack = PACKS.iter().find(|pack| pack.name == confirmed.pack);
        let request = GenerationRequest {
            pack: pack.map(|pack| pack.name.to_string()),
            prompts: confirmed
                .prompts
                .iter()
                .skip(pack.map_or(0, |pack| pack.prompts.len()))
                .cloned()
                .collect(),
            count: Some(confirmed.images_per_prompt),
            seed: Some(confirmed.seed),
        };
        let current = self.plan_generation(confirmed.avatar_id, &request).await?;
        if current != *confirmed {
            return Err(Error::Conflict(format!(
                "the generation plan for {} changed since it was confirmed; review it and confirm it again",
                confirmed.avatar_name
            )));
        }
        if !confirmed.test_mode {
            // Fail before writing a pack that could never be sent.
            self.fal_client()?;
        }
        let now = self.clock.now();
        let generation = Generation {
            id: Uuid::new_v4(),
            avatar_id: confirmed.avatar_id,
            training_job_id: confirmed.training_job_id,
            pack: confirmed.pack.clone(),
            prompts: confirmed.prompts.clone(),
            images_per_prompt: confirmed.images_per_prompt,
            seed: confirmed.seed,
            image_size: confirmed.image_size.clone(),
            endpoint: confirmed.endpoint.clone(),
            lora_url: None,
            test_mode: confirmed.test_mode,
            state: GenerationState::Pending,
            confirmed_cost_usd: confirmed.cost_usd,
            price_source: confirmed.price_source.clone(),
            failure: None,
            cancel_requested: false,
            created_at: now,
            updated_at: now,
            finished_at: None,
        };
        let budget = self
            .config()
            .monthly_budget_usd
            .filter(|_| !confirmed.test_mode);
        match self.library.insert_generation(&generation, budget)? {
            GenerationInsert::Inserted => {}
            GenerationInsert::OverBudget { committed_usd } => {
                return Err(self.over_budget(
                    generation.confirmed_cost_usd,
                    committed_usd,
                    budget.unwrap_or_default(),
                ));
            }
        }
        self.generate_in_background(generation.id);
        Ok(generation)
    }

    /// Carries a generation to its end: what is missing is made (test mode) or asked of fal,
    /// request by request, and each image stored with its likeness; `on_image` hears of each.
    /// Safe to call again after a crash: places filled are skipped, a request sent is never
    /// sent again.
    pub async fn advance_generation(
        &self,
        generation_id: Uuid,
        mut on_image: impl FnMut(&GalleryImage) + Send,
    ) -> Result<Generation> {
        // Images another process makes while this one watches are told once; those made
        // before this call are not news.
        let mut told: std::collections::HashSet<u32> = self
            .library
            .generation_images(generation_id)?
            .iter()
            .map(|image| image.position)
            .collect();
        loop {
            let generation = self.load_generation(generation_id)?;
            if generation.state.is_final() {
                return Ok(generation);
            }
            if self.take_generation_lease(generation_id)? {
                let outcome = self
                    .holding_lease(
                        || self.take_generation_lease(generation_id),
                        Fence::PackTaken,
                        self.make_generation(generation, &mut on_image),
                    )
                    .await;
                self.library
                    .release_generation_lease(generation_id, &self.lease_owner)?;
                match outcome {
                    // Taken over while this process was away: the other one makes it now.
                    Err(Error::Fenced(Fence::PackTaken)) => {}
                    outcome => return outcome,
                }
            }
            // Another process (the app in the tray, or the CLI) is making this pack: its images
            // arrive in the library, and its lease runs out if it dies.
            for image in self.library.generation_images(generation_id)? {
                if told.insert(image.position) {
                    on_image(&image);
                }
            }
            self.clock.sleep(self.config().job_lease / 3).await;
        }
    }

    fn take_generation_lease(&self, generation_id: Uuid) -> Result<bool> {
        let (now, until) = self.lease_period()?;
        Ok(self
            .library
            .take_generation_lease(generation_id, &self.lease_owner, now, until)?)
    }

    /// Makes the pack's images, holding its lease.
    async fn make_generation(
        &self,
        mut generation: Generation,
        on_image: &mut (dyn for<'image> FnMut(&'image GalleryImage) + Send),
    ) -> Result<Generation> {
        generation.state = GenerationState::Running;
        generation = self.save_generation(generation)?;
        let Some(pack) = self.pack_context(&generation)? else {
            let failure = JobFailure::Other {
                detail: "the avatar has no photos to judge the images against".into(),
            };
            return self.end_generation(generation, GenerationState::Failed, Some(failure));
        };
        self.sample_maker(generation.test_mode)
            .fill(self, generation, &pack, on_image)
            .await
    }

    /// What judging a pack's images needs: the avatar, its photos and their identities.
    fn pack_context(&self, generation: &Generation) -> Result<Option<PackContext>> {
        let avatar = self.library.avatar(generation.avatar_id)?.ok_or_else(|| {
            Error::NotFound(format!(
                "the avatar of generation {} is gone",
                generation.id
            ))
        })?;
        let photos = self.library.photos(generation.avatar_id)?;
        if photos.is_empty() {
            return Ok(None);
        }
        self.backfill_identities(&avatar)?;
        let identities: std::collections::HashMap<PhotoId, Vec<photos::Descriptor>> = self
            .library
            .photo_identities(generation.avatar_id)?
            .into_iter()
            .map(|(id, json)| (id, crate::import::descriptors(json.as_deref())))
            .collect();
        let training = photos
            .iter()
            .map(|photo| photos::TrainingPhoto {
                faces: identities.get(&photo.id).cloned().unwrap_or_default(),
                difference_hash: photo.difference_hash,
            })
            .collect();
        Ok(Some(PackContext {
            portrait: avatar.training_type == TrainingType::Portrait,
            photos,
            training,
            checker: self.checker()?.without_thumbnails(),
        }))
    }

    pub(crate) fn filled_places(
        &self,
        generation: &Generation,
    ) -> Result<std::collections::HashSet<u32>> {
        Ok(self
            .library
            .generation_images(generation.id)?
            .iter()
            .map(|image| image.position)
            .collect())
    }

    /// Judges an image against the avatar's photos and stores it at its place; `None` when the
    /// place was already filled (before a crash).
    pub(crate) fn keep_image(
        &self,
        generation: &Generation,
        pack: &PackContext,
        sample: &Sample<'_>,
        bytes: &[u8],
    ) -> Result<Option<GalleryImage>> {
        let report = pack.checker.check(bytes, None, photos::Subject::Portrait);
        // A flagged image is fal's black square: there is nothing to judge.
        let likeness = (pack.portrait && !sample.flagged).then(|| {
            let faces: Vec<photos::Descriptor> = report
                .identities
                .iter()
                .map(|identity| identity.descriptor)
                .collect();
            photos::likeness(&faces, report.difference_hash, &pack.training)
        });
        let format = report.format.map_or("jpeg", |format| match format {
            photos::Format::Png => "png",
            photos::Format::Webp => "webp",
            _ => "jpeg",
        });
        let image = GalleryImage {
            id: Uuid::new_v4(),
            generation_id: generation.id,
            avatar_id: generation.avatar_id,
            training_job_id: generation.training_job_id,
            position: sample.position,
            prompt: sample.prompt.to_string(),
            seed: sample.seed,
            file_hash: report.md5.clone(),
            format: format.into(),
            width: report.width,
            height: report.height,
            flagged: sample.flagged,
            simulated: sample.simulated,
            likeness: likeness.and_then(|likeness| likeness.score),
            likeness_distance: likeness.and_then(|likeness| likeness.distance),
            copy_of: likeness
                .and_then(|likeness| likeness.copy_of)
                .map(|index| pack.photos[index].id),
            favourite: false,
            created_at: self.clock.now(),
        };
        Ok(self
            .library
            .store_gallery_image(&image, bytes)?
            .then_some(image))
    }

    /// Asks a generation to stop after the image being made.
    pub fn cancel_generation(&self, generation_id: Uuid) -> Result<Generation> {
        self.library.request_generation_cancel(generation_id)?;
        self.load_generation(generation_id)
    }

    /// The avatar's gallery, newest pack first.
    pub fn gallery<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
    ) -> Result<Vec<GalleryImage>> {
        let avatar = self.avatar(avatar_reference)?;
        Ok(self.library.gallery(avatar.id)?)
    }

    /// The avatar's generations, newest first, with their median likeness.
    pub fn generations<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
    ) -> Result<Vec<GenerationSummary>> {
        let avatar = self.avatar(avatar_reference)?;
        self.summaries(avatar.id)
    }

    /// Each avatar's newest finished pack's median likeness, for the avatar cards.
    /// Read in one query: the avatar list asks for it on every showing.
    pub fn latest_likeness(&self) -> Result<std::collections::HashMap<AvatarId, f32>> {
        // Each avatar's packs, newest first, each with its images' scores.
        let mut packs: Vec<(AvatarId, Uuid, Vec<Option<f32>>)> = Vec::new();
        for (avatar, pack, likeness) in self.library.completed_pack_likeness()? {
            match packs.last_mut() {
                Some((_, last, scores)) if *last == pack => scores.push(likeness),
                _ => packs.push((avatar, pack, vec![likeness])),
            }
        }
        let mut latest = std::collections::HashMap::new();
        for (avatar, _, scores) in packs {
            if latest.contains_key(&avatar) {
                continue;
            }
            if let Some(median) = photos::median_score(scores) {
                latest.insert(avatar, median);
            }
        }
        Ok(latest)
    }

    fn summaries(&self, avatar_id: AvatarId) -> Result<Vec<GenerationSummary>> {
        let presets: std::collections::HashMap<JobId, String> = self
            .library
            .jobs()?
            .into_iter()
            .filter(|job| job.avatar_id == avatar_id)
            .map(|job| (job.id, job.preset))
            .collect();
        self.library
            .generations(avatar_id)?
            .into_iter()
            .map(|generation| {
                let images = self.library.generation_images(generation.id)?;
                let median = photos::median_score(images.iter().map(|image| image.likeness));
                Ok(GenerationSummary {
                    median_likeness: median,
                    median_band: median.map(photos::likeness_band),
                    training_preset: presets.get(&generation.training_job_id).cloned(),
                    images: images.len() as u32,
                    generation: crate::GenerationView::from(&generation),
                })
            })
            .collect()
    }

    pub fn gallery_image(&self, image_id: Uuid) -> Result<Option<GalleryImage>> {
        Ok(self.library.gallery_image(image_id)?)
    }

    /// Where a gallery image's file is.
    pub fn gallery_file(&self, image: &GalleryImage) -> PathBuf {
        self.library.gallery_path(&image.file_hash, &image.format)
    }

    pub fn set_favourite(&self, image_id: Uuid, favourite: bool) -> Result<()> {
        if !self.library.set_favourite(image_id, favourite)? {
            return Err(Error::NotFound(format!("there is no image {image_id}")));
        }
        Ok(())
    }

    pub fn delete_gallery_image(&self, image_id: Uuid) -> Result<GalleryImage> {
        self.library
            .delete_gallery_image(image_id)?
            .ok_or_else(|| Error::NotFound(format!("there is no image {image_id}")))
    }

    /// Copies the avatar's favourite images into `folder` (created if missing), named by their
    /// place; returns the files written.
    pub fn export_favourites<'a>(
        &self,
        avatar_reference: impl Into<AvatarRef<'a>>,
        folder: &std::path::Path,
    ) -> Result<Vec<PathBuf>> {
        let favourites: Vec<GalleryImage> = self
            .gallery(avatar_reference)?
            .into_iter()
            .filter(|image| image.favourite)
            .collect();
        std::fs::create_dir_all(folder).map_err(|error| {
            Error::InvalidInput(format!("{} cannot be created: {error}", folder.display()))
        })?;
        favourites
            .iter()
            .map(|image| {
                let name = format!(
                    "{}-{:02}.jpg",
                    image.generation_id.simple(),
                    image.position + 1
                );
                let target = folder.join(name);
                std::fs::copy(self.gallery_file(image), &target).map_err(|error| {
                    Error::InvalidInput(format!("{} cannot be written: {error}", target.display()))
                })?;
                Ok(target)
            })
            .collect()
    }

    /// Generations not yet at their end, oldest first.
    pub fn unfinished_generations(&self) -> Result<Vec<Generation>> {
        Ok(self.library.unfinished_generations()?)
    }

    pub(crate) fn load_generation(&self, id: Uuid) -> Result<Generation> {
        self.library
            .generation(id)?
            .ok_or_else(|| Error::NotFound(format!("there is no generation {id}")))
    }

    fn save_generation(&self, mut generation: Generation) -> Result<Generation> {
        generation.updated_at = self.clock.now();
        self.library.update_generation(&generation)?;
        Ok(generation)
    }

    pub(crate) fn end_generation(
        &self,
        mut generation: Generation,
        state: GenerationState,
        failure: Option<JobFailure>,
    ) -> Result<Generation> {
        generation.state = state;
        generation.failure = failure;
        generation.finished_at = Some(self.clock.now());
        let generation = self.save_generation(generation)?;
        if let Ok(Some(avatar)) = self.library.avatar(generation.avatar_id) {
            let images = self.library.generation_images(generation.id)?.len() as u32;
            self.notifier.notify(&crate::Notice {
                avatar_id: avatar.id,
                avatar_name: avatar.name,
                outcome: match state {
                    GenerationState::Completed => JobState::Completed,
                    GenerationState::Cancelled => JobState::Cancelled,
                    _ => JobState::Failed,
                },
                failure: generation.failure.clone(),
                pack_images: Some(images),
            });
        }
        Ok(generation)
    }
}
