//! On-device photo checks. [`Checker::check`] takes a file's bytes and returns a [`Report`]: the
//! verdict with reason codes, the measurements behind it, the face boxes, the hashes used to find
//! duplicates, and a thumbnail. Everything is synchronous and CPU-only; callers parallelise.

mod budget;
mod coverage;
mod curate;
mod decode;
mod export;
mod faces;
mod format;
mod heif;
mod identity;
mod likeness;
mod quality;
mod read;
mod sameness;
mod sample;

use image::{GrayImage, RgbImage};
use md5::{Digest, Md5};
use serde::Serialize;
use ts_rs::TS;

pub use coverage::{
    Coverage, CoverageGap, FramingCounts, LightingCounts, Look, MIN_PHOTOS_FOR_ADVICE, PoseCounts,
};
pub use curate::{Candidate, CandidateFace, Choice, Framing, Lighting, curate};
pub use export::{TrainingCopy, training_copy};
pub use faces::{DetectorError, Face, FaceDetector, Keypoint, Keypoints};
pub use format::Format;
pub use heif::{
    DECODER_NAME as HEIF_DECODER_NAME, LIBHEIF_KNOWN_FIXED,
    decoder_installed as heif_decoder_installed, libheif_version, serve_child as serve_heif_child,
};
pub use identity::{
    CHIP_SIDE, DESCRIPTOR_LEN, Descriptor, FaceEmbedder, Pose, align as align_face, pose, yaw,
};
pub use likeness::{
    Likeness, LikenessBand, TrainingPhoto, band as likeness_band, likeness, median_score,
};
pub use quality::Quality;
pub use read::{ReadRefusal, is_kernel_file, read_photo_file};
pub use sameness::{
    DIFFERENT_PERSON_DISTANCE, MIN_SET, PhotoJudgement, SAME_PERSON_PAIR, Sameness, judge_set,
    judge_set_with,
};
pub use sample::simulated_sample;

/// Why a photo is refused (`reasons`) or what to know about it (`warnings`). A code keeps its
/// meaning forever; new situations get new codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "PhotoCode")]
pub enum Code {
    UnsupportedFormat,
    Corrupt,
    FileTooLarge,
    ResolutionTooLow,
    DimensionsTooLarge,
    NoFace,
    MultipleFaces,
    FaceTooSmall,
    Blurry,
    TooDark,
    TooBright,
    LowContrast,
    Duplicate,
    NearDuplicate,
    LimitReached,
    /// The file could not be read from disk (permissions, a vanished network share).
    Unreadable,
    /// An earlier check of this file (in a watched folder) stopped the app: passed over since.
    CheckStopped,
    /// Warning: the name says one format, the content is another.
    ExtensionMismatch,
    /// Warning: visible grain.
    Noisy,
    /// Warning: other, smaller faces besides the main one.
    BackgroundFaces,
    /// A portrait of someone else than the person in the rest of the set.
    DifferentPerson,
}

/// What the photo is for: portraits need exactly one clear face, styles need none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Portrait,
    Style,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest file, bytes (`PHOTO_MAX_SIZE`).
    pub max_file_size: u64,
    /// Shortest acceptable short side, pixels: fal's trainers work at 512–1024 px.
    pub min_short_side: u32,
    /// Longest acceptable side, pixels, checked from the header before decoding.
    pub max_side: u32,
    /// Most pixels, checked from the header before decoding (decompression bombs).
    pub max_pixels: u64,
    /// Memory all the decodes of one checker may hold at once, bytes. Each decode's need is
    /// predicted from the header; a photo that alone needs more is refused unopened, and
    /// concurrent decodes wait until theirs fits.
    pub decode_budget: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_size: 20 * 1024 * 1024,
            min_short_side: 512,
            max_side: 20_000,
            max_pixels: 120_000_000,
            decode_budget: 192 * 1024 * 1024,
        }
    }
}

/// A face's short side must be at least this share of the photo's short side.
pub const MIN_FACE_SHARE: f32 = 0.10;
/// Faces smaller than this share of the largest face are background, not a second subject.
const BACKGROUND_FACE_SHARE: f32 = 0.5;
/// The longest side of the stored thumbnail.
pub const THUMBNAIL_SIDE: u32 = 320;

/// The identity of one face of a photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceIdentity {
    /// Index into the report's faces.
    pub face: usize,
    pub descriptor: Descriptor,
    pub pose: Pose,
}

/// Most faces of one photo whose identity is computed: a crowd's background faces are not the
/// subject.
pub const MAX_IDENTITIES: usize = 6;

/// Everything learnt about one photo.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: Option<Format>,
    pub file_size: u64,
    /// MD5 of the file's bytes (the guide's `file_hash`).
    pub md5: String,
    /// Upright width and height, pixels; 0 when unknown.
    pub width: u32,
    pub height: u32,
    /// Faces in upright pixels of the original, strongest first.
    pub faces: Vec<Face>,
    /// Portraits: the identity of each face that could be the subject (the prominent ones,
    /// strongest first), for judging a set of photos together.
    #[serde(skip)]
    pub identities: Vec<FaceIdentity>,
    pub quality: Option<Quality>,
    /// 64-bit difference hash of the picture, for near duplicates.
    #[serde(skip)]
    pub difference_hash: Option<u64>,
    pub reasons: Vec<Code>,
    pub warnings: Vec<Code>,
    /// The decoder's own words, when it refused the file.
    pub detail: Option<String>,
    /// A small upright JPEG for the UI.
    #[serde(skip)]
    pub thumbnail: Option<Vec<u8>>,
}

impl Report {
    fn new(bytes: &[u8]) -> Self {
        Self {
            format: None,
            file_size: bytes.len() as u64,
            md5: md5_hex(bytes),
            width: 0,
            height: 0,
            faces: Vec::new(),
            identities: Vec::new(),
            quality: None,
            difference_hash: None,
            reasons: Vec::new(),
            warnings: Vec::new(),
            detail: None,
            thumbnail: None,
        }
    }

    /// A report for a file that could not even be read.
    pub fn unreadable(detail: String) -> Self {
        let mut report = Self::new(&[]);
        report.md5.clear();
        report.reasons.push(Code::Unreadable);
        report.detail = Some(detail);
        report
    }

    pub fn accepted(&self) -> bool {
        self.reasons.is_empty()
    }

    fn refuse(mut self, code: Code, detail: impl Into<String>) -> Self {
        self.reasons.push(code);
        self.detail = Some(detail.into());
        self
    }
}

/// Decodes a photo to the working size the checks use, with no other work, and returns its
/// pixel count: the decode step alone, to measure how close the whole check comes to it.
pub fn decode_working_copy(bytes: &[u8]) -> Result<usize, String> {
    let format = Format::sniff(bytes).ok_or("not an image")?;
    let stored = decode::stored_dimensions(bytes, format, u32::MAX)
        .map_err(decode::DecodeFailure::into_detail)?;
    let orientation = image::metadata::Orientation::NoTransforms;
    let image = decode::working_copy(
        bytes,
        format,
        stored,
        u32::MAX,
        orientation,
        decode::WORKING_LONG_SIDE,
    )
    .map_err(decode::DecodeFailure::into_detail)?;
    Ok(image.len())
}

pub fn md5_hex(bytes: &[u8]) -> String {
    let digest = Md5::digest(bytes);
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Checks photos; one per process, shared by all threads.
pub struct Checker {
    /// Shared, so checkers with other limits cost nothing.
    detector: std::sync::Arc<FaceDetector>,
    limits: Limits,
    budget: budget::DecodeBudget,
    /// Whether reports carry a thumbnail; checks that store nothing need none.
    thumbnails: bool,
    /// Whether portraits' faces get an identity descriptor.
    identity: bool,
    /// Whether photos refused for their faces (several people, a face too small) get one too.
    identity_of_refused: bool,
    /// Whether portraits with no face found are searched again in tiles.
    tiled_search: bool,
    /// Time spent in each stage, summed over threads.
    clock: StageClock,
}

/// Nanoseconds spent in each stage of the checks, summed over every thread.
#[derive(Debug, Default)]
struct StageClock {
    decode: std::sync::atomic::AtomicU64,
    detect: std::sync::atomic::AtomicU64,
    identity: std::sync::atomic::AtomicU64,
    measure: std::sync::atomic::AtomicU64,
}

impl StageClock {
    fn add(counter: &std::sync::atomic::AtomicU64, since: std::time::Instant) {
        let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        counter.fetch_add(nanos, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Time one checker spent in each stage, summed over all its threads (so more than the wall
/// time when several cores work).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimes {
    /// Decoding to the working copy (and, for small faces, a larger copy).
    pub decode: std::time::Duration,
    /// Face detection.
    pub detect: std::time::Duration,
    /// Face alignment and identity descriptors.
    pub identity: std::time::Duration,
    /// Quality, hashes and thumbnails.
    pub measure: std::time::Duration,
}

impl Checker {
    pub fn new(limits: Limits) -> Result<Self, DetectorError> {
        Ok(Self {
            detector: std::sync::Arc::new(FaceDetector::load()?),
            budget: budget::DecodeBudget::new(limits.decode_budget),
            limits,
            thumbnails: true,
            identity: true,
            identity_of_refused: true,
            tiled_search: true,
            clock: StageClock::default(),
        })
    }

    /// The same checks without searching tiles for small faces when none is found: for sorting
    /// a camera roll, where a photo whose face is that small is not worth a third of the time.
    pub fn without_tiled_search(self) -> Self {
        Self {
            tiled_search: false,
            ..self
        }
    }

    /// The same checks, with no identity for photos refused for their faces (several people,
    /// a face too small): they cannot be picked, and their faces are most of the identity work
    /// in a camera roll.
    pub fn identity_only_for_usable_faces(self) -> Self {
        Self {
            identity_of_refused: false,
            ..self
        }
    }

    /// Time spent so far in each stage by this checker.
    pub fn stage_times(&self) -> StageTimes {
        let read = |counter: &std::sync::atomic::AtomicU64| {
            std::time::Duration::from_nanos(counter.load(std::sync::atomic::Ordering::Relaxed))
        };
        StageTimes {
            decode: read(&self.clock.decode),
            detect: read(&self.clock.detect),
            identity: read(&self.clock.identity),
            measure: read(&self.clock.measure),
        }
    }

    /// The same checks without identity descriptors (faster; nothing to compare them with).
    pub fn without_identity(self) -> Self {
        Self {
            identity: false,
            ..self
        }
    }

    /// The same checks without making thumbnails.
    pub fn without_thumbnails(self) -> Self {
        Self {
            thumbnails: false,
            ..self
        }
    }

    /// The same face models with other limits, and a decode budget of its own.
    pub fn with_limits(&self, limits: Limits) -> Self {
        Self {
            detector: self.detector.clone(),
            budget: budget::DecodeBudget::new(limits.decode_budget),
            limits,
            thumbnails: self.thumbnails,
            identity: self.identity,
            identity_of_refused: self.identity_of_refused,
            tiled_search: self.tiled_search,
            clock: StageClock::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Reads and checks one file. A file over the size limit is refused from its size alone,
    /// without reading it, and one that lies about its size once the limit is read; only regular
    /// files are read ([`read_photo_file`]). The bytes are let go once checked: a caller that
    /// stores the file reads it again and compares its MD5.
    pub fn check_file(&self, path: &std::path::Path, subject: Subject) -> Report {
        let extension = path.extension().and_then(|extension| extension.to_str());
        match read_photo_file(path, self.limits.max_file_size) {
            Ok(bytes) => self.check(&bytes, extension, subject),
            Err(ReadRefusal::TooLarge { size }) => {
                let mut report = Report::new(&[]);
                report.md5.clear();
                report.file_size = size;
                report.refuse(
                    Code::FileTooLarge,
                    too_large_detail(size, self.limits.max_file_size),
                )
            }
            Err(ReadRefusal::NotAFile) => Report::unreadable(
                "this is not a regular file (a device, a pipe or the kernel's)".into(),
            ),
            Err(ReadRefusal::Unreadable(error)) => Report::unreadable(error.to_string()),
        }
    }

    /// Checks one file's bytes. `extension` is the file name's, to notice files that lie about
    /// their type. Duplicates and the avatar's photo limit are judged by the caller, who knows the
    /// other photos.
    pub fn check(&self, bytes: &[u8], extension: Option<&str>, subject: Subject) -> Report {
        let mut report = Report::new(bytes);
        let limits = &self.limits;
        if report.file_size > limits.max_file_size {
            let detail = too_large_detail(report.file_size, limits.max_file_size);
            return report.refuse(Code::FileTooLarge, detail);
        }
        if bytes.is_empty() {
            return report.refuse(Code::Corrupt, "the file is empty");
        }
        let Some(format) = Format::sniff(bytes) else {
            return report.refuse(Code::UnsupportedFormat, "this is not an image file");
        };
        report.format = Some(format);
        if extension.is_some_and(|extension| !format.matches_extension(extension)) {
            report.warnings.push(Code::ExtensionMismatch);
        }
        let stored = match decode::stored_dimensions(bytes, format, limits.max_side) {
            Ok(dimensions) => dimensions,
            Err(failure) => return report.refuse(failure.code(), failure.into_detail()),
        };
        let orientation = decode::orientation(bytes, format);
        (report.width, report.height) = if decode::swaps_sides(orientation) {
            (stored.1, stored.0)
        } else {
            stored
        };
        let pixels = report.width as u64 * report.height as u64;
        if report.width.max(report.height) > limits.max_side || pixels > limits.max_pixels {
            let detail = format!(
                "{} × {} pixels is more than this app opens ({} px per side, {} megapixels)",
                report.width,
                report.height,
                limits.max_side,
                limits.max_pixels / 1_000_000
            );
            return report.refuse(Code::DimensionsTooLarge, detail);
        }
        if report.width == 0 || report.height == 0 {
            return report.refuse(Code::Corrupt, "the image has no pixels");
        }
        if report.width.min(report.height) < limits.min_short_side {
            report.reasons.push(Code::ResolutionTooLow);
        }

        let need = match decode::decode_cost(bytes, format, stored) {
            Ok(need) => need,
            Err(error) => return report.refuse(Code::Corrupt, error),
        };
        if need > self.budget.limit() {
            let detail = format!(
                "opening it would take {} MB of memory, more than the {} MB a photo may use",
                need.div_ceil(1024 * 1024),
                self.budget.limit() / (1024 * 1024)
            );
            return report.refuse(Code::DimensionsTooLarge, detail);
        }
        let held = self.budget.hold(need);
        let started = std::time::Instant::now();
        let working = match decode::working_copy(
            bytes,
            format,
            stored,
            limits.max_side,
            orientation,
            decode::WORKING_LONG_SIDE,
        ) {
            Ok(image) => image,
            Err(failure) => {
                report
                    .reasons
                    .retain(|code| *code != Code::ResolutionTooLow);
                return report.refuse(failure.code(), failure.into_detail());
            }
        };
        drop(held);
        StageClock::add(&self.clock.decode, started);
        let started = std::time::Instant::now();
        let faces = match subject {
            Subject::Portrait if self.tiled_search => self.detector.detect(&working),
            Subject::Portrait => self.detector.detect_without_tiles(&working),
            Subject::Style => self.detector.detect_full_range(&working),
        };
        let faces = faces.unwrap_or_else(|error| {
            report.detail = Some(error.to_string());
            Vec::new()
        });
        StageClock::add(&self.clock.detect, started);
        let started = std::time::Instant::now();
        let to_original = report.width as f32 / working.width() as f32;
        self.judge(&mut report, &working, &faces, to_original, subject);
        StageClock::add(&self.clock.measure, started);
        let refused_for_faces = report
            .reasons
            .iter()
            .any(|code| matches!(code, Code::MultipleFaces | Code::FaceTooSmall));
        if subject == Subject::Portrait
            && self.identity
            && (self.identity_of_refused || !refused_for_faces)
        {
            let started = std::time::Instant::now();
            let source = Source {
                bytes,
                format,
                stored,
                orientation,
            };
            self.describe_faces(&mut report, &working, &faces, &source);
            StageClock::add(&self.clock.identity, started);
        }
        report
    }

    fn judge(
        &self,
        report: &mut Report,
        working: &RgbImage,
        faces: &[Face],
        to_original: f32,
        subject: Subject,
    ) {
        let short_side = working.width().min(working.height()) as f32;
        let face_side = |face: &Face| face.width.min(face.height);
        if subject == Subject::Portrait {
            match faces.first() {
                None => report.reasons.push(Code::NoFace),
                Some(main) => {
                    let main_side = faces.iter().map(face_side).fold(face_side(main), f32::max);
                    let prominent = faces
                        .iter()
                        .filter(|face| face_side(face) >= main_side * BACKGROUND_FACE_SHARE)
                        .count();
                    // Too small first: when every face is tiny, counting them says nothing useful.
                    if main_side < short_side * MIN_FACE_SHARE {
                        report.reasons.push(Code::FaceTooSmall);
                    } else if prominent > 1 {
                        report.reasons.push(Code::MultipleFaces);
                    }
                    if prominent == 1 && faces.len() > 1 {
                        report.warnings.push(Code::BackgroundFaces);
                    }
                }
            }
        }

        let grey: GrayImage = image::imageops::grayscale(working);
        let focus = (subject == Subject::Portrait)
            .then(|| faces.first())
            .flatten()
            .map(|face| clamp_region(face, grey.width(), grey.height()));
        let quality = quality::measure(&grey, focus);
        for (bad, code) in [
            (quality.is_blurry(), Code::Blurry),
            (quality.is_too_dark(), Code::TooDark),
            (quality.is_too_bright(), Code::TooBright),
            (quality.is_low_contrast(), Code::LowContrast),
        ] {
            if bad {
                report.reasons.push(code);
            }
        }
        if quality.is_noisy() {
            report.warnings.push(Code::Noisy);
        }
        report.quality = Some(quality);
        report.difference_hash = Some(quality::difference_hash(&grey));
        report.faces = faces.iter().map(|face| face.scaled(to_original)).collect();
        if self.thumbnails {
            report.thumbnail = thumbnail(working);
        }
    }
}

impl Checker {
    /// The identity of the faces that could be the subject: those at least half the size of the
    /// largest, at most [`MAX_IDENTITIES`]. A face too small in the working copy to tell who it
    /// is is looked at in a larger decode of the photo; one that is small even in the original
    /// gets no identity.
    fn describe_faces(
        &self,
        report: &mut Report,
        working: &RgbImage,
        faces: &[Face],
        source: &Source,
    ) {
        let side = |face: &Face| face.width.min(face.height);
        let largest = faces.iter().map(side).fold(0.0, f32::max);
        let candidates: Vec<(usize, &Face)> = faces
            .iter()
            .enumerate()
            .filter(|(_, face)| side(face) >= largest * BACKGROUND_FACE_SHARE)
            .take(MAX_IDENTITIES)
            .collect();
        let Some(smallest) = candidates
            .iter()
            .map(|(_, face)| face.width)
            .reduce(f32::min)
        else {
            return;
        };
        let embedder = match FaceEmbedder::shared() {
            Ok(embedder) => embedder,
            Err(error) => {
                report.detail = Some(error.to_string());
                return;
            }
        };
        let larger = self.larger_copy(report, working, smallest, source);
        let (image, factor) = match &larger {
            Some(image) => (image, image.width() as f32 / working.width() as f32),
            None => (working, 1.0),
        };
        for (index, face) in candidates {
            let face = face.scaled(factor);
            if face.width < MIN_IDENTITY_FACE_WIDTH {
                continue;
            }
            match embedder.describe(image, &face) {
                Ok(descriptor) => report.identities.push(FaceIdentity {
                    face: index,
                    descriptor,
                    pose: identity::pose(&face),
                }),
                Err(error) => report.detail = Some(error.to_string()),
            }
        }
    }

    /// A decode of the photo large enough that a face `face_width` pixels wide in the working
    /// copy is [`IDENTITY_FACE_WIDTH`] wide, when the original has those pixels and the decode
    /// budget allows it.
    fn larger_copy(
        &self,
        report: &Report,
        working: &RgbImage,
        face_width: f32,
        source: &Source,
    ) -> Option<RgbImage> {
        let working_long = working.width().max(working.height()) as f32;
        let original_long = report.width.max(report.height);
        let wanted = (working_long * IDENTITY_FACE_WIDTH / face_width.max(1.0)).ceil() as u32;
        let wanted = wanted.min(original_long).min(MAX_IDENTITY_LONG_SIDE);
        if (wanted as f32) < working_long * 1.25 {
            return None;
        }
        let need =
            decode::decode_cost_for(source.bytes, source.format, source.stored, wanted).ok()?;
        if need > self.budget.limit() {
            return None;
        }
        let _held = self.budget.hold(need);
        decode::working_copy(
            source.bytes,
            source.format,
            source.stored,
            self.limits.max_side,
            source.orientation,
            wanted,
        )
        .ok()
    }
}

/// The encoded photo, for decoding it again at another size.
struct Source<'a> {
    bytes: &'a [u8],
    format: Format,
    stored: (u32, u32),
    orientation: image::metadata::Orientation,
}

/// A face is described from a copy of the photo in which it is at least this wide, pixels, when
/// the original has that many (the identity chip's face is about 100 pixels wide).
const IDENTITY_FACE_WIDTH: f32 = 112.0;
/// Largest copy decoded for identity, pixels on the long side.
const MAX_IDENTITY_LONG_SIDE: u32 = 2048;
/// Faces narrower than this even in the original are too small to tell who they are.
pub const MIN_IDENTITY_FACE_WIDTH: f32 = 40.0;

fn too_large_detail(size: u64, limit: u64) -> String {
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    format!(
        "the file is {:.1} MiB; the limit is {:.1} MiB",
        mib(size),
        mib(limit)
    )
}

/// The face box grown by a quarter each way (hair and chin carry focus too), inside the image.
fn clamp_region(face: &Face, width: u32, height: u32) -> (u32, u32, u32, u32) {
    let grow = face.width.max(face.height) * 0.25;
    let left = (face.x - grow).clamp(0.0, width as f32);
    let top = (face.y - grow).clamp(0.0, height as f32);
    let right = (face.x + face.width + grow).clamp(0.0, width as f32);
    let bottom = (face.y + face.height + grow).clamp(0.0, height as f32);
    (
        left as u32,
        top as u32,
        (right - left) as u32,
        (bottom - top) as u32,
    )
}

fn thumbnail(working: &RgbImage) -> Option<Vec<u8>> {
    let long_side = working.width().max(working.height());
    let scale = (THUMBNAIL_SIDE as f32 / long_side as f32).min(1.0);
    let width = ((working.width() as f32 * scale).round() as u32).max(1);
    let height = ((working.height() as f32 * scale).round() as u32).max(1);
    let small = image::imageops::thumbnail(working, width, height);
    let image = turbojpeg::Image {
        pixels: small.as_raw().as_slice(),
        width: width as usize,
        pitch: width as usize * 3,
        height: height as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, 82, turbojpeg::Subsamp::Sub2x2)
        .ok()
        .map(|jpeg| jpeg.to_vec())
}
