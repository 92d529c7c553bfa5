//! HEIC/HEIF (the iPhone default) and AVIF, read by libheif with the system's HEVC and AV1
//! decoders. The container's own transforms (`irot`, `imir`, `clap`) are applied while decoding,
//! so the picture comes out upright. An iPhone writes the same turn again as an EXIF orientation;
//! that tag is ignored for these formats, as libheif asks, or the photo would be turned twice.

use image::RgbImage;

use crate::decode::DecodeFailure;
use libheif_rs::{ColorSpace, HeifContext, HeifError, HeifErrorCode, ImageHandle, RgbChroma};

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

fn primary(context: &HeifContext) -> Result<ImageHandle, DecodeFailure> {
    Ok(context.primary_image_handle()?)
}

/// The primary image's upright width and height, from the container alone.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeFailure> {
    let context = HeifContext::read_from_bytes(bytes)?;
    let handle = primary(&context)?;
    Ok((handle.width(), handle.height()))
}

/// The memory decoding takes: the decoder's YUV planes (4:2:0 at most 8 bits in practice,
/// 16 bits for deeper images) and the RGB conversion.
pub fn decode_cost((width, height): (u32, u32)) -> u64 {
    let pixels = u64::from(width) * u64::from(height);
    pixels * 3 + pixels * 3
}

/// Decodes the primary image, upright, to 8-bit RGB.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, DecodeFailure> {
    let context = HeifContext::read_from_bytes(bytes)?;
    let handle = primary(&context)?;
    let image = handle.decode(ColorSpace::Rgb(RgbChroma::Rgb), None)?;
    let planes = image.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| DecodeFailure::Corrupt("libheif returned no RGB plane".to_string()))?;
    let row = plane.width as usize * 3;
    let mut pixels = Vec::with_capacity(row * plane.height as usize);
    for line in plane.data.chunks(plane.stride).take(plane.height as usize) {
        pixels.extend_from_slice(line.get(..row).ok_or_else(|| {
            DecodeFailure::Corrupt("libheif returned a row shorter than the image".to_string())
        })?);
    }
    RgbImage::from_raw(plane.width, plane.height, pixels).ok_or_else(|| {
        DecodeFailure::Corrupt("libheif returned fewer pixels than the image has".into())
    })
}
