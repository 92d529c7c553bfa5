//! Reading dimensions from the header, and decoding straight to a small working copy with EXIF
//! orientation applied. JPEGs are scaled inside the decoder (DCT scaling), which is most of the
//! speed of the whole check.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageReader, RgbImage};
use turbojpeg::{Decompressor, PixelFormat, ScalingFactor};

use crate::{Code, Format, heif};

/// The working copy's long side is at least this (or the original's, when smaller).
pub const WORKING_LONG_SIDE: u32 = 480;
/// No decoder may allocate more than this for one photo.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// Why a photo's pixels could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeFailure {
    /// A valid file this device has no decoder for (a codec or feature libheif lacks).
    Unsupported(String),
    /// A damaged or cut-short file.
    Corrupt(String),
}

impl DecodeFailure {
    pub fn code(&self) -> Code {
        match self {
            Self::Unsupported(_) => Code::UnsupportedFormat,
            Self::Corrupt(_) => Code::Corrupt,
        }
    }

    pub fn into_detail(self) -> String {
        match self {
            Self::Unsupported(detail) | Self::Corrupt(detail) => detail,
        }
    }
}

impl From<String> for DecodeFailure {
    fn from(detail: String) -> Self {
        Self::Corrupt(detail)
    }
}

/// Width and height as stored, before orientation.
pub fn stored_dimensions(
    bytes: &[u8],
    format: Format,
    max_side: u32,
) -> Result<(u32, u32), DecodeFailure> {
    if format == Format::Jpeg {
        let header = turbojpeg::read_header(bytes).map_err(|error| error.to_string())?;
        let side = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
        return Ok((side(header.width), side(header.height)));
    }
    if format.is_heif() {
        return heif::dimensions(bytes);
    }
    let mut reader = reader(bytes, format, max_side)?;
    reader.no_limits(); // the header alone is small; limits apply to the decode below
    Ok(reader
        .into_dimensions()
        .map_err(|error| error.to_string())?)
}

/// The EXIF orientation, or `NoTransforms` when there is none or it cannot be read. HEIF files
/// are turned upright by their container, so their EXIF orientation is not applied again.
pub fn orientation(bytes: &[u8], format: Format) -> Orientation {
    if format.is_heif() {
        return Orientation::NoTransforms;
    }
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()
        .and_then(|exif| {
            exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
                .and_then(|field| field.value.get_uint(0))
        })
        .and_then(|value| u8::try_from(value).ok())
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms)
}

/// Whether the orientation swaps width and height.
pub fn swaps_sides(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Progressive JPEGs with more scans than this are refused: each scan re-walks the whole image,
/// so a small file with thousands of scans takes minutes (libjpeg-turbo's own advice).
const MAX_PROGRESSIVE_SCANS: u32 = 500;

/// The memory decoding the image to its working copy takes, predicted from the header: the
/// scaled output for a baseline JPEG, the full coefficient buffers for a progressive one (the
/// decoder keeps every scan's coefficients at full size), the whole image at its own bit depth
/// for the other formats (they are decoded whole, then reduced).
pub fn decode_cost(bytes: &[u8], format: Format, stored: (u32, u32)) -> Result<u64, String> {
    decode_cost_for(bytes, format, stored, WORKING_LONG_SIDE)
}

/// [`decode_cost`] for a copy whose long side is at least `copy_long_side`.
pub fn decode_cost_for(
    bytes: &[u8],
    format: Format,
    (width, height): (u32, u32),
    copy_long_side: u32,
) -> Result<u64, String> {
    let pixels = u64::from(width) * u64::from(height);
    if format == Format::Jpeg {
        let long_side = width.max(height) as usize;
        let factor = jpeg_scaling(long_side, copy_long_side);
        let scaled = factor.scale(width as usize) as u64 * factor.scale(height as usize) as u64;
        let coefficients = if is_progressive_jpeg(bytes) {
            // Three components of 64 two-byte coefficients per 8 × 8 block.
            pixels * 3 * 2
        } else {
            0
        };
        return Ok(scaled * 3 + coefficients);
    }
    if format.is_heif() {
        return Ok(heif::decode_cost((width, height)));
    }
    let mut reader = reader(bytes, format, u32::MAX)?;
    reader.no_limits();
    let decoder = reader.into_decoder().map_err(|error| error.to_string())?;
    let bytes_per_pixel = u64::from(image::ImageDecoder::color_type(&decoder).bytes_per_pixel());
    // The decoded image, and its RGB conversion when it is in another layout.
    Ok(pixels * bytes_per_pixel + pixels * 3)
}

/// Whether the JPEG is progressive (SOF2): its markers are walked up to the first frame header.
fn is_progressive_jpeg(bytes: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return false;
        }
        let marker = bytes[at + 1];
        match marker {
            0xC2 | 0xC6 | 0xCA | 0xCE => return true,
            0xC0 | 0xC1 | 0xC3 | 0xC5 | 0xC7 | 0xC9 | 0xCB | 0xCD | 0xCF | 0xDA => return false,
            0xFF => at += 1,
            _ => {
                let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
                at += 2 + length;
            }
        }
    }
    false
}

fn jpeg_scaling(stored_long_side: usize, long_side: u32) -> ScalingFactor {
    [1, 2, 3, 4, 5, 6, 7, 8]
        .into_iter()
        .map(|numerator| ScalingFactor::new(numerator, 8))
        .find(|factor| factor.scale(stored_long_side) >= long_side as usize)
        .unwrap_or(ScalingFactor::ONE)
}

/// Decodes to an upright copy whose long side is at least `long_side` (or the original's, when
/// smaller) and less than twice that.
pub fn working_copy(
    bytes: &[u8],
    format: Format,
    stored: (u32, u32),
    max_side: u32,
    orientation: Orientation,
    long_side: u32,
) -> Result<RgbImage, DecodeFailure> {
    let upright = |image: RgbImage| {
        let mut image = DynamicImage::ImageRgb8(image);
        image.apply_orientation(orientation);
        image.into_rgb8()
    };
    if format == Format::Jpeg {
        return Ok(upright(decode_jpeg_scaled(bytes, stored, long_side)?));
    }
    let image = if format.is_heif() {
        // The container's size is the upright one: it has no EXIF turn to apply.
        DynamicImage::ImageRgb8(heif::decode(bytes, stored)?)
    } else {
        reader(bytes, format, max_side)?
            .decode()
            .map_err(|error| error.to_string())?
    };
    let stored_long_side = image.width().max(image.height());
    let image = if stored_long_side > long_side * 2 {
        let scale = long_side as f32 / stored_long_side as f32;
        let width = ((image.width() as f32 * scale).round() as u32).max(1);
        let height = ((image.height() as f32 * scale).round() as u32).max(1);
        image.thumbnail_exact(width, height)
    } else {
        image
    };
    Ok(upright(image.into_rgb8()))
}

fn decode_jpeg_scaled(
    bytes: &[u8],
    (width, height): (u32, u32),
    long_side: u32,
) -> Result<RgbImage, String> {
    let factor = jpeg_scaling(width.max(height) as usize, long_side);
    let mut decompressor = Decompressor::new().map_err(|error| error.to_string())?;
    decompressor
        .set_scaling_factor(factor)
        .map_err(|error| error.to_string())?;
    decompressor
        .set_scan_limit(MAX_PROGRESSIVE_SCANS)
        .map_err(|error| error.to_string())?;
    let scaled_width = factor.scale(width as usize);
    let scaled_height = factor.scale(height as usize);
    let mut pixels = vec![0u8; scaled_width * scaled_height * 3];
    let output = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: scaled_width,
        pitch: scaled_width * 3,
        height: scaled_height,
        format: PixelFormat::RGB,
    };
    // libjpeg-turbo reports a file cut short ("premature end of data") as an error here.
    decompressor
        .decompress(bytes, output)
        .map_err(|error| error.to_string())?;
    RgbImage::from_raw(scaled_width as u32, scaled_height as u32, pixels)
        .ok_or_else(|| "the decoder returned fewer pixels than the image has".to_string())
}

fn reader(
    bytes: &[u8],
    format: Format,
    max_side: u32,
) -> Result<ImageReader<Cursor<&[u8]>>, String> {
    let image_format = format
        .image_format()
        .ok_or_else(|| format!("{format:?} cannot be decoded on this device"))?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    Ok(reader)
}
