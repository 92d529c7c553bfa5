//! HEIC/HEIF (the iPhone default) and AVIF, read by libheif with the system's HEVC and AV1
//! decoders. The container's own transforms (`irot`, `imir`, `clap`) are applied while decoding,
//! so the picture comes out upright. An iPhone writes the same turn again as an EXIF orientation;
//! that tag is ignored for these formats, as libheif asks, or the photo would be turned twice.
//!
//! libheif and its codecs parse untrusted files in C and C++, and the size the container declares
//! (`ispe`) need not be the size the coded stream decodes to. So every file is read in a
//! short-lived child process, `avatar-heif`, with limits on its memory and CPU time set from the
//! declared size: a file that lies, or crashes the decoder, costs the child, and comes back as a
//! `corrupt` verdict. The child is this module's [`serve_child`]; the parent side is
//! [`dimensions`] and [`decode`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::OnceLock;

use image::RgbImage;
use libheif_rs::{ColorSpace, HeifContext, HeifError, HeifErrorCode, RgbChroma};

use crate::decode::DecodeFailure;

/// The child program's name; it lives beside the app's (or, in a cargo build, one folder up).
pub const DECODER_NAME: &str = "avatar-heif";
/// Names another child program, for a layout where it is not beside the app.
const DECODER_ENV: &str = "AVATAR_HEIF_DECODER";
/// The oldest libheif without the flaws in reading HEIF files published so far (CVE-2024-41311,
/// fixed in 1.18.0; CVE-2025-43966 and CVE-2025-43967, fixed in 1.19.8). A distribution may have
/// patched an older one; Diagnostics says which is loaded.
pub const LIBHEIF_KNOWN_FIXED: (u8, u8, u8) = (1, 19, 8);

/// What the child may use besides the decode itself: the runtime, libheif's plugins, the
/// decoder's threads, the file.
const CHILD_BASE_MEMORY: u64 = 96 * 1024 * 1024;
/// CPU seconds the child may take: a 120-megapixel HEIC decodes in a few.
const CHILD_CPU_SECONDS: u64 = 60;
/// The most of the file the child reads; the parent never sends more than the photo limit.
const CHILD_MAX_INPUT: u64 = 256 * 1024 * 1024;
/// How much of the child's error message the parent reads.
const CHILD_MAX_MESSAGE: u64 = 4096;
/// The child's exit codes for a refusal, with the reason on stderr.
const EXIT_UNSUPPORTED: u8 = 3;
const EXIT_CORRUPT: u8 = 4;

impl From<HeifError> for DecodeFailure {
    fn from(error: HeifError) -> Self {
        let detail = format!("libheif: {error}");
        match error.code {
            HeifErrorCode::UnsupportedFileType
            | HeifErrorCode::UnsupportedFeature
            | HeifErrorCode::PluginLoadingError => Self::Unsupported(detail),
            _ => Self::Corrupt(detail),
        }
    }
}

/// The primary image's upright width and height, from the container alone.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeFailure> {
    let answer = run_child(&["info"], bytes, 64)?;
    let text = String::from_utf8_lossy(&answer);
    let mut sides = text.split_whitespace().map(str::parse::<u32>);
    match (sides.next(), sides.next()) {
        (Some(Ok(width)), Some(Ok(height))) => Ok((width, height)),
        _ => Err(DecodeFailure::Corrupt(format!(
            "{DECODER_NAME} answered {text:?} for the image's size"
        ))),
    }
}

/// The memory one decode takes, the child's and this process's: libheif's YUV planes and its
/// codec's (8 bits, 4:2:0 in practice, and room for deeper ones), the RGB conversion, and the
/// RGB copy this process receives.
pub fn decode_cost((width, height): (u32, u32)) -> u64 {
    child_decode_cost((width, height)) + u64::from(width) * u64::from(height) * 3
}

fn child_decode_cost((width, height): (u32, u32)) -> u64 {
    u64::from(width) * u64::from(height) * 8
}

/// Decodes the primary image, upright, to 8-bit RGB, refusing it unless it is exactly the
/// `upright` size [`dimensions`] read from its container.
pub fn decode(bytes: &[u8], (width, height): (u32, u32)) -> Result<RgbImage, DecodeFailure> {
    let expected = u64::from(width) * u64::from(height) * 3;
    let sides = [width.to_string(), height.to_string()];
    let pixels = run_child(&["decode", &sides[0], &sides[1]], bytes, expected)?;
    if pixels.len() as u64 != expected {
        return Err(DecodeFailure::Corrupt(format!(
            "{DECODER_NAME} returned {} bytes for a {width} × {height} picture",
            pixels.len()
        )));
    }
    RgbImage::from_raw(width, height, pixels)
        .ok_or_else(|| DecodeFailure::Corrupt("the decoded picture has the wrong size".into()))
}

/// The version of the libheif the child loads, and whether it is at least
/// [`LIBHEIF_KNOWN_FIXED`]. None when it cannot be told.
pub fn libheif_version() -> Option<(String, bool)> {
    let answer = run_child(&["version"], &[], 64).ok()?;
    let version = String::from_utf8(answer).ok()?;
    let mut numbers = version.split('.').map(|part| part.parse::<u8>().ok());
    let parsed = (
        numbers.next().flatten()?,
        numbers.next().flatten().unwrap_or(0),
        numbers.next().flatten().unwrap_or(0),
    );
    Some((version, parsed >= LIBHEIF_KNOWN_FIXED))
}

/// The version of the libheif this process loaded, from the name of its file: the safe wrapper
/// has no version call.
fn loaded_libheif_version() -> Result<String, DecodeFailure> {
    let unknown = || DecodeFailure::Unsupported("libheif's version cannot be told".to_owned());
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|_| unknown())?;
    let library = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.contains("/libheif.so"))
        .ok_or_else(unknown)?;
    let file = std::fs::canonicalize(library).map_err(|_| unknown())?;
    file.file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.split_once(".so."))
        .map(|(_, version)| version.to_owned())
        .ok_or_else(unknown)
}

/// Whether the child program is where this process looks for it.
pub fn decoder_installed() -> bool {
    decoder_path().is_ok()
}

fn decoder_path() -> Result<&'static Path, DecodeFailure> {
    static DECODER: OnceLock<Option<PathBuf>> = OnceLock::new();
    DECODER
        .get_or_init(|| {
            if let Some(path) = std::env::var_os(DECODER_ENV) {
                return Some(PathBuf::from(path));
            }
            let app = std::env::current_exe().ok()?;
            // Beside the app; a cargo build's test programs sit one folder below it.
            app.ancestors()
                .skip(1)
                .take(2)
                .map(|folder| folder.join(DECODER_NAME))
                .find(|path| path.is_file())
        })
        .as_deref()
        .ok_or_else(|| {
            DecodeFailure::Unsupported(format!(
                "{DECODER_NAME}, which opens HEIC and AVIF files, is not installed beside this program"
            ))
        })
}

/// Runs the child on `bytes` and returns what it wrote, at most `max_answer` bytes.
fn run_child(args: &[&str], bytes: &[u8], max_answer: u64) -> Result<Vec<u8>, DecodeFailure> {
    let mut child = Command::new(decoder_path()?)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| {
            DecodeFailure::Unsupported(format!("{DECODER_NAME} could not start: {error}"))
        })?;
    let (Some(mut input), Some(output), Some(errors)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        unreachable!("all three streams are piped");
    };
    // The child reads the whole file before it writes a byte, so writing first cannot block on a
    // full pipe. A child that stopped early makes this write fail; its status says why.
    let _ = input.write_all(bytes);
    drop(input);
    let mut answer = Vec::new();
    let read = output.take(max_answer + 1).read_to_end(&mut answer);
    let mut message = String::new();
    let _ = errors.take(CHILD_MAX_MESSAGE).read_to_string(&mut message);
    // Over the limit: the child is stopped rather than waited for.
    if answer.len() as u64 > max_answer {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|error| DecodeFailure::Corrupt(format!("{DECODER_NAME}: {error}")))?;
    let message = message.trim().to_owned();
    match status.code().and_then(|code| u8::try_from(code).ok()) {
        Some(0) if read.is_ok() && answer.len() as u64 <= max_answer => Ok(answer),
        Some(0) => Err(DecodeFailure::Corrupt(format!(
            "{DECODER_NAME} returned more than the picture's size"
        ))),
        Some(EXIT_UNSUPPORTED) => Err(DecodeFailure::Unsupported(message)),
        Some(EXIT_CORRUPT) => Err(DecodeFailure::Corrupt(message)),
        _ => Err(DecodeFailure::Corrupt(stopped(status, &message))),
    }
}

/// Why a child ended without a verdict: a crash, or one of its limits.
fn stopped(status: ExitStatus, message: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match status.signal() {
        Some(signal) => format!("was stopped by signal {signal}"),
        None => format!("failed ({status})"),
    };
    let message = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    format!(
        "{DECODER_NAME} {how} reading this file: it is damaged, or larger than it says{message}"
    )
}

/// The child: `avatar-heif info` writes the primary image's upright `WIDTH HEIGHT`;
/// `avatar-heif decode WIDTH HEIGHT` writes its RGB pixels, refusing a picture of any other size
/// (the file comes on stdin); `avatar-heif version` writes the loaded libheif's version.
pub fn serve_child(args: &[String]) -> ExitCode {
    let mut output = std::io::stdout().lock();
    let result = match args {
        [mode] if mode == "info" => read_input().and_then(|bytes| info(&bytes, &mut output)),
        [mode] if mode == "version" => loaded_libheif_version()
            .and_then(|version| output.write_all(version.as_bytes()).map_err(write_failed)),
        [mode, width, height] if mode == "decode" => {
            match (width.parse::<u32>(), height.parse::<u32>()) {
                (Ok(width), Ok(height)) => {
                    read_input().and_then(|bytes| decode_here(&bytes, (width, height), &mut output))
                }
                _ => Err(DecodeFailure::Corrupt(format!(
                    "bad size {width} × {height}"
                ))),
            }
        }
        _ => {
            eprintln!(
                "usage: {DECODER_NAME} info | {DECODER_NAME} decode WIDTH HEIGHT < FILE | {DECODER_NAME} version"
            );
            return ExitCode::from(2);
        }
    };
    let written = result.and_then(|()| {
        output
            .flush()
            .map_err(|error| DecodeFailure::Corrupt(error.to_string()))
    });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(DecodeFailure::Unsupported(detail)) => {
            eprintln!("{detail}");
            ExitCode::from(EXIT_UNSUPPORTED)
        }
        Err(DecodeFailure::Corrupt(detail)) => {
            eprintln!("{detail}");
            ExitCode::from(EXIT_CORRUPT)
        }
    }
}

fn read_input() -> Result<Vec<u8>, DecodeFailure> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(CHILD_MAX_INPUT)
        .read_to_end(&mut bytes)
        .map_err(|error| DecodeFailure::Corrupt(error.to_string()))?;
    Ok(bytes)
}

/// Limits this process to `memory` bytes of data (heap, anonymous mappings, thread stacks) and
/// [`CHILD_CPU_SECONDS`] of CPU, so a file that lies stops the child, not the machine.
fn limit_self(memory: u64) -> Result<(), DecodeFailure> {
    use rlimit::Resource;
    let set = |resource: Resource, limit: u64| {
        resource
            .set(limit, limit)
            .map_err(|error| DecodeFailure::Corrupt(format!("cannot limit the decoder: {error}")))
    };
    set(Resource::DATA, memory)?;
    set(Resource::CPU, CHILD_CPU_SECONDS)
}

fn info(bytes: &[u8], output: &mut impl Write) -> Result<(), DecodeFailure> {
    limit_self(CHILD_BASE_MEMORY + bytes.len() as u64)?;
    let context = HeifContext::read_from_bytes(bytes)?;
    let handle = context.primary_image_handle()?;
    write!(output, "{} {}", handle.width(), handle.height()).map_err(write_failed)
}

fn decode_here(
    bytes: &[u8],
    (width, height): (u32, u32),
    output: &mut impl Write,
) -> Result<(), DecodeFailure> {
    limit_self(CHILD_BASE_MEMORY + bytes.len() as u64 + child_decode_cost((width, height)))?;
    let context = HeifContext::read_from_bytes(bytes)?;
    let handle = context.primary_image_handle()?;
    if (handle.width(), handle.height()) != (width, height) {
        return Err(DecodeFailure::Corrupt(format!(
            "the file changed while it was read: it says {} × {} now",
            handle.width(),
            handle.height()
        )));
    }
    let image = handle
        .decode(ColorSpace::Rgb(RgbChroma::Rgb), None)
        .map_err(|error| match DecodeFailure::from(error) {
            // Within the limits, a valid file of the declared size decodes; most often the coded
            // picture is larger than the container says.
            DecodeFailure::Corrupt(detail) => DecodeFailure::Corrupt(format!(
                "{detail}; the picture is damaged, or larger than the {width} × {height} it says"
            )),
            unsupported => unsupported,
        })?;
    let planes = image.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| DecodeFailure::Corrupt("libheif returned no RGB plane".to_string()))?;
    if (plane.width, plane.height) != (width, height) {
        return Err(DecodeFailure::Corrupt(format!(
            "the picture is {} × {}, not the {width} × {height} its container says",
            plane.width, plane.height
        )));
    }
    let row = plane.width as usize * 3;
    for line in plane.data.chunks(plane.stride).take(plane.height as usize) {
        let line = line.get(..row).ok_or_else(|| {
            DecodeFailure::Corrupt("libheif returned a row shorter than the image".to_string())
        })?;
        output.write_all(line).map_err(write_failed)?;
    }
    Ok(())
}

fn write_failed(error: std::io::Error) -> DecodeFailure {
    DecodeFailure::Corrupt(format!("{DECODER_NAME} could not answer: {error}"))
}
