//! fal's LoRA inference endpoint `fal-ai/flux-lora` (fal-protocol.md §4.4), played without a
//! model: the input is validated as the app does, each `loras[].path` is fetched as a runner
//! would, and the images are crops of the photos the LoRA was trained on (the dataset zip its
//! training job downloaded), so a likeness check downstream sees the trained face. Without a
//! LoRA, or with one the fake cannot trace to a training that kept its photos, they are grey.

use std::io::{Cursor, Read};

use bytes::Bytes;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::download::{self, DownloadError};
use crate::jobs::{self, Job, JobError, Output, validation_item_at};
use crate::lora;
use crate::state::Shared;
use crate::{Outcome, Script};

/// The inference endpoint the fake serves from the start.
pub(crate) const FLUX_LORA: &str = "fal-ai/flux-lora";

/// The share of a photo's width and height an image is cropped from.
const CROP_SHARE: f64 = 0.85;
/// The widest or tallest custom `image_size` the fake makes. UNCONFIRMED: fal's bound; this one
/// keeps the images a test holds in memory small.
const MAX_SIDE: i64 = 4096;
const MAX_IMAGES: i64 = 4;
const DEFAULT_STEPS: i64 = 28;
/// The format's own limit on a safetensors header.
const MAX_HEADER_BYTES: u64 = 100_000_000;
const GREY: Rgb<u8> = Rgb([128, 128, 128]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);

/// `image_size` presets, `(name, width, height)` ([ARGS-DOC]).
const PRESETS: [(&str, u32, u32); 6] = [
    ("square_hd", 1024, 1024),
    ("square", 512, 512),
    ("portrait_4_3", 768, 1024),
    ("portrait_16_9", 576, 1024),
    ("landscape_4_3", 1024, 768),
    ("landscape_16_9", 1024, 576),
];
/// `landscape_4_3`, the size without an `image_size`.
const DEFAULT_SIZE: (u32, u32) = (1024, 768);
/// A custom `image_size` side left out.
const DEFAULT_SIDE: i64 = 512;

/// A finished inference: what its result, webhook and history show, and the files it serves.
pub(crate) struct Generation {
    pub images: Vec<GeneratedImage>,
    seed: i64,
    prompt: String,
    inference_seconds: f64,
}

pub(crate) struct GeneratedImage {
    pub file_name: String,
    content_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub bytes: Bytes,
    /// The safety checker flagged it, and it was replaced by a black image.
    nsfw: bool,
}

impl GeneratedImage {
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }
}

impl Generation {
    /// The model output, its image URLs under `files_url`.
    pub fn output(&self, files_url: &str) -> Value {
        let images: Vec<Value> = self
            .images
            .iter()
            .map(|image| {
                json!({
                    "url": format!("{files_url}/{}", image.file_name),
                    "content_type": image.content_type,
                    "file_name": image.file_name,
                    "file_size": image.bytes.len(),
                    "width": image.width,
                    "height": image.height,
                })
            })
            .collect();
        let flags: Vec<bool> = self.images.iter().map(|image| image.nsfw).collect();
        json!({
            "images": images,
            "timings": { "inference": self.inference_seconds },
            "seed": self.seed,
            "has_nsfw_concepts": flags,
            "prompt": self.prompt,
        })
    }

    pub fn image(&self, file_name: &str) -> Option<&GeneratedImage> {
        self.images
            .iter()
            .find(|image| image.file_name == file_name)
    }

    /// The megapixels billed: each image rounded up to whole megapixels, flagged ones included.
    /// UNCONFIRMED: whether a megapixel is 10^6 or 2^20 pixels, and whether flagged images bill.
    pub fn billed_megapixels(&self) -> f64 {
        self.images
            .iter()
            .map(|image| (u64::from(image.width) * u64::from(image.height)).div_ceil(1_000_000))
            .sum::<u64>() as f64
    }
}

#[derive(Clone, Copy)]
enum Format {
    Jpeg,
    Png,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
        }
    }
}

/// A validated input.
struct Request {
    prompt: String,
    lora_urls: Vec<String>,
    width: u32,
    height: u32,
    num_images: u32,
    seed: Option<i64>,
    safety_checker: bool,
    format: Format,
    steps: i64,
}

/// Runs an inference once it has left the queue: validate, fetch the LoRAs, work for the
/// script's run time, then make the images.
pub(crate) async fn run(
    shared: &Shared,
    request_id: &str,
    script: &Script,
    input: &Value,
    cancel: &Notify,
) -> Result<Output, JobError> {
    let started = Instant::now();
    let request = validate(input)?;
    let seed = request.seed.unwrap_or_else(random_seed);
    jobs::log(
        shared,
        request_id,
        format!("Loading {} LoRA weight file(s)", request.lora_urls.len()),
    );
    let datasets = training_datasets(shared, &request.lora_urls).await?;
    jobs::log(
        shared,
        request_id,
        format!(
            "Generating {} image(s) of {}x{} in {} steps, seed {seed}",
            request.num_images, request.width, request.height, request.steps
        ),
    );
    jobs::work_for(script, cancel, script.run_time).await?;
    if let Outcome::Failure {
        status,
        error,
        error_type,
        detail,
    } = &script.outcome
    {
        return Err(JobError::from_outcome(*status, error, error_type, detail));
    }
    let flagged = script.flag_images.clone();
    let prompt = request.prompt.clone();
    let images = tokio::task::spawn_blocking(move || generate(&datasets, &request, seed, &flagged))
        .await
        .map_err(|_| JobError::runner_failed("The image generation stopped unexpectedly"))?;
    jobs::log(
        shared,
        request_id,
        format!("Generated {} image(s)", images.len()),
    );
    Ok(Output::Images(Generation {
        images,
        seed,
        prompt,
        inference_seconds: started.elapsed().as_secs_f64(),
    }))
}

/// A seed for a request without one; fal picks one at random and reports it.
fn random_seed() -> i64 {
    i64::from(uuid::Uuid::new_v4().as_u128() as u32)
}

/// Checks the input as the app's pydantic model does, reporting every fault at once. A field
/// with a fault reads as a placeholder, as any fault fails the whole input.
fn validate(input: &Value) -> Result<Request, JobError> {
    let mut faults = Vec::new();
    let mut fault = |location: Value, (message, kind): Problem| {
        faults.push(validation_item_at(location, &message, kind));
    };
    let field = |name: &str| input.get(name).filter(|value| !value.is_null());
    let body = |name: &str| json!(["body", name]);

    let prompt = match field("prompt") {
        None => {
            fault(body("prompt"), missing());
            String::new()
        }
        Some(Value::String(prompt)) => prompt.clone(),
        Some(_) => {
            fault(body("prompt"), str_expected());
            String::new()
        }
    };

    let mut lora_urls = Vec::new();
    match field("loras") {
        None => {}
        Some(Value::Array(loras)) => {
            for (index, lora) in loras.iter().enumerate() {
                let at = |name: &str| json!(["body", "loras", index, name]);
                let Some(lora) = lora.as_object() else {
                    fault(
                        json!(["body", "loras", index]),
                        not_a_valid("dict", "type_error.dict"),
                    );
                    continue;
                };
                match lora.get("path").filter(|path| !path.is_null()) {
                    None => fault(at("path"), missing()),
                    Some(Value::String(path)) => lora_urls.push(path.clone()),
                    Some(_) => fault(at("path"), str_expected()),
                }
                if lora
                    .get("scale")
                    .is_some_and(|scale| !scale.is_null() && !scale.is_number())
                {
                    fault(at("scale"), not_a_valid("float", "type_error.float"));
                }
            }
        }
        Some(_) => fault(body("loras"), not_a_valid("list", "type_error.list")),
    }

    let (width, height) = match field("image_size") {
        None => DEFAULT_SIZE,
        Some(Value::String(name)) => preset(name).unwrap_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|(name, _, _)| *name).collect();
            fault(body("image_size"), not_one_of(&names));
            (1, 1)
        }),
        Some(Value::Object(custom)) => {
            let mut side = |name: &str| {
                let value = custom.get(name).filter(|value| !value.is_null());
                match value.map_or(Ok(DEFAULT_SIDE), |value| integer(value, 1, MAX_SIDE)) {
                    Ok(side) => side as u32,
                    Err(problem) => {
                        fault(json!(["body", "image_size", name]), problem);
                        1
                    }
                }
            };
            (side("width"), side("height"))
        }
        Some(_) => {
            fault(body("image_size"), not_a_valid("dict", "type_error.dict"));
            (1, 1)
        }
    };

    let mut bounded = |name: &str, min: i64, max: i64, default: i64| match field(name) {
        None => default,
        Some(value) => integer(value, min, max).unwrap_or_else(|problem| {
            fault(body(name), problem);
            default
        }),
    };
    let num_images = bounded("num_images", 1, MAX_IMAGES, 1) as u32;
    let steps = bounded("num_inference_steps", 1, 50, DEFAULT_STEPS);
    let seed = field("seed").and_then(|seed| {
        integer(seed, i64::MIN, i64::MAX)
            .map_err(|problem| fault(body("seed"), problem))
            .ok()
    });

    if let Some(guidance) = field("guidance_scale")
        && let Err(problem) = number(guidance, 0.0, 35.0)
    {
        fault(body("guidance_scale"), problem);
    }

    // fal also takes the checker's switch as `enable_safety_checks` ([ARGS-DOC]).
    let safety_switch = ["enable_safety_checker", "enable_safety_checks"]
        .into_iter()
        .find_map(|name| field(name).map(|value| (name, value)));
    let safety_checker = match safety_switch {
        None => true,
        Some((_, Value::Bool(enabled))) => *enabled,
        Some((name, _)) => {
            fault(
                body(name),
                (
                    "value could not be parsed to a boolean".into(),
                    "type_error.bool",
                ),
            );
            true
        }
    };

    let format = match field("output_format") {
        None => Format::Jpeg,
        Some(Value::String(format)) if format == "jpeg" => Format::Jpeg,
        Some(Value::String(format)) if format == "png" => Format::Png,
        Some(_) => {
            fault(body("output_format"), not_one_of(&["jpeg", "png"]));
            Format::Jpeg
        }
    };

    if !faults.is_empty() {
        return Err(JobError::validation(faults));
    }
    Ok(Request {
        prompt,
        lora_urls,
        width,
        height,
        num_images,
        seed,
        safety_checker,
        format,
        steps,
    })
}

/// A validation fault's message and pydantic error type.
type Problem = (String, &'static str);

fn missing() -> Problem {
    ("field required".into(), "value_error.missing")
}

fn str_expected() -> Problem {
    ("str type expected".into(), "type_error.str")
}

fn not_a_valid(kind: &str, error_type: &'static str) -> Problem {
    (format!("value is not a valid {kind}"), error_type)
}

fn not_one_of(permitted: &[&str]) -> Problem {
    let permitted: Vec<String> = permitted.iter().map(|name| format!("'{name}'")).collect();
    (
        format!(
            "value is not a valid enumeration member; permitted: {}",
            permitted.join(", ")
        ),
        "type_error.enum",
    )
}

fn preset(name: &str) -> Option<(u32, u32)> {
    PRESETS
        .iter()
        .find(|(preset, _, _)| *preset == name)
        .map(|(_, width, height)| (*width, *height))
}

fn integer(value: &Value, min: i64, max: i64) -> Result<i64, Problem> {
    let integer = value
        .as_i64()
        .ok_or_else(|| not_a_valid("integer", "type_error.integer"))?;
    in_range(integer, min, max)
}

fn number(value: &Value, min: f64, max: f64) -> Result<f64, Problem> {
    let number = value
        .as_f64()
        .ok_or_else(|| not_a_valid("float", "type_error.float"))?;
    in_range(number, min, max)
}

fn in_range<T: PartialOrd + std::fmt::Display>(value: T, min: T, max: T) -> Result<T, Problem> {
    if value < min {
        Err((
            format!("ensure this value is greater than or equal to {min}"),
            "value_error.number.not_ge",
        ))
    } else if value > max {
        Err((
            format!("ensure this value is less than or equal to {max}"),
            "value_error.number.not_le",
        ))
    } else {
        Ok(value)
    }
}

impl JobError {
    /// The runner could not fetch `loras[index].path`. UNCONFIRMED: fal's answer; it follows
    /// the trainer's for a dataset it cannot fetch.
    fn lora_unavailable(index: usize, reason: &str) -> Self {
        Self::at_lora(index, reason, "file_download_error")
    }

    /// The file at `loras[index].path` is not a safetensors file. UNCONFIRMED: fal's answer and
    /// its error type.
    fn lora_unreadable(index: usize, reason: &str) -> Self {
        Self::at_lora(index, reason, "lora_load_error")
    }

    fn at_lora(index: usize, reason: &str, error_type: &str) -> Self {
        let item = validation_item_at(json!(["body", "loras", index, "path"]), reason, error_type);
        let mut error = Self::validation(vec![item]);
        error.error = reason.to_owned();
        error.error_type = error_type.to_owned();
        error
    }
}

enum LoraProblem {
    Unavailable(String),
    Unreadable(String),
}

/// The dataset zip of the training that made each LoRA, in `loras` order, leaving out LoRAs the
/// fake did not make and trainings that kept no photos.
async fn training_datasets(shared: &Shared, urls: &[String]) -> Result<Vec<Bytes>, JobError> {
    let mut datasets = Vec::new();
    for (index, url) in urls.iter().enumerate() {
        let header = lora_header(shared, url)
            .await
            .map_err(|problem| match problem {
                LoraProblem::Unavailable(reason) => JobError::lora_unavailable(index, &reason),
                LoraProblem::Unreadable(reason) => JobError::lora_unreadable(index, &reason),
            })?;
        if let Some(training) = lora::training_request(&header) {
            datasets.extend(shared.state().jobs.get(training).and_then(Job::dataset));
        }
    }
    Ok(datasets)
}

/// Fetches the safetensors header of the LoRA at `url`, as a runner would fetch the file, and
/// stops reading there: the weights do not matter to the fake.
async fn lora_header(shared: &Shared, url: &str) -> Result<Value, LoraProblem> {
    let (mut response, _) = download::open(shared, url, "the LoRA")
        .await
        .map_err(|error| match error {
            DownloadError::Refused(reason) | DownloadError::Unavailable(reason) => {
                LoraProblem::Unavailable(reason)
            }
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(LoraProblem::Unavailable(format!(
            "Could not download the LoRA from {url}: the server answered HTTP {}",
            status.as_u16()
        )));
    }
    let unreadable =
        || LoraProblem::Unreadable(format!("The file at {url} is not a safetensors file"));
    let mut head: Vec<u8> = Vec::new();
    let header_end = loop {
        if let Some(length) = head.get(..8) {
            let length = u64::from_le_bytes(length.try_into().expect("eight bytes"));
            if length > MAX_HEADER_BYTES {
                return Err(unreadable());
            }
            let end = 8 + length as usize;
            if head.len() >= end {
                break end;
            }
        }
        match response.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) => return Err(unreadable()),
            Err(error) => {
                return Err(LoraProblem::Unavailable(format!(
                    "The download of the LoRA from {url} broke off: {error}"
                )));
            }
        }
    };
    serde_json::from_slice(&head[8..header_end]).map_err(|_| unreadable())
}

/// The images of `request`: photo `(seed + i) % count` of the training photos, an 85% crop at a
/// seed-dependent offset, scaled to cover the size and centre-cropped to it; black when the
/// safety checker flags it; grey without photos.
fn generate(
    datasets: &[Bytes],
    request: &Request,
    seed: i64,
    flagged: &[u32],
) -> Vec<GeneratedImage> {
    let photos: Vec<Vec<u8>> = datasets.iter().flat_map(photos_in).collect();
    (0..request.num_images)
        .map(|index| {
            let nsfw = request.safety_checker && flagged.contains(&index);
            let pixels = if nsfw {
                RgbImage::from_pixel(request.width, request.height, BLACK)
            } else {
                framed_photo(&photos, request, seed, index)
                    .unwrap_or_else(|| RgbImage::from_pixel(request.width, request.height, GREY))
            };
            let mut bytes = Vec::new();
            DynamicImage::ImageRgb8(pixels)
                .write_to(&mut Cursor::new(&mut bytes), request.format.image_format())
                .expect("an RGB image encodes in memory");
            GeneratedImage {
                file_name: format!("image_{index}.{}", request.format.extension()),
                content_type: request.format.content_type(),
                width: request.width,
                height: request.height,
                bytes: bytes.into(),
                nsfw,
            }
        })
        .collect()
}

/// Image `index` framed from its training photo; `None` without photos or when that photo does
/// not decode.
fn framed_photo(photos: &[Vec<u8>], request: &Request, seed: i64, index: u32) -> Option<RgbImage> {
    let count = i64::try_from(photos.len())
        .ok()
        .filter(|count| *count > 0)?;
    let pick = seed.wrapping_add(i64::from(index)).rem_euclid(count) as usize;
    let photo = image::load_from_memory(&photos[pick]).ok()?;
    let (width, height) = (photo.width(), photo.height());
    let crop_width = ((f64::from(width) * CROP_SHARE).round() as u32).max(1);
    let crop_height = ((f64::from(height) * CROP_SHARE).round() as u32).max(1);
    let offset = scramble(seed, index);
    let x = (offset % u64::from(width - crop_width + 1)) as u32;
    let y = ((offset >> 32) % u64::from(height - crop_height + 1)) as u32;
    Some(
        photo
            .crop_imm(x, y, crop_width, crop_height)
            .resize_to_fill(request.width, request.height, FilterType::Triangle)
            .to_rgb8(),
    )
}

/// A well-spread number from the seed and the image index (splitmix64), for crop offsets.
fn scramble(seed: i64, index: u32) -> u64 {
    let mut mixed = (seed as u64) ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed = mixed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^ (mixed >> 31)
}

/// The JPEG and PNG files of a dataset zip, in archive order; captions and anything unreadable
/// are left out.
fn photos_in(zip: &Bytes) -> Vec<Vec<u8>> {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(zip.as_ref())) else {
        return Vec::new();
    };
    let mut photos = Vec::new();
    for index in 0..archive.len() {
        let Ok(mut entry) = archive.by_index(index) else {
            continue;
        };
        let name = entry.name().to_ascii_lowercase();
        let is_photo = [".jpg", ".jpeg", ".png"]
            .iter()
            .any(|extension| name.ends_with(extension));
        let mut bytes = Vec::new();
        if entry.is_file() && is_photo && entry.read_to_end(&mut bytes).is_ok() {
            photos.push(bytes);
        }
    }
    photos
}
