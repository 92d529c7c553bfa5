//! The copy of a photo that leaves the device for training: upright, and with no metadata (GPS,
//! camera serials, the creator's name). An upright JPEG keeps its compressed data byte for byte
//! and only loses its metadata segments; a turned one is rotated losslessly on its DCT blocks. So
//! the trainer sees exactly the pixels the creator took. HEIC and AVIF become JPEG (trainers take
//! no HEIF); other formats are re-encoded as PNG.

use std::io::Cursor;

use image::ImageFormat;
use image::metadata::Orientation;
use turbojpeg::{Transform, TransformOp};

use crate::decode;
use crate::{Format, heif};

/// An upright, metadata-free copy and the file extension it needs.
pub struct TrainingCopy {
    pub bytes: Vec<u8>,
    pub extension: &'static str,
}

/// Makes the copy of a stored photo that goes into a training set, in `buffer` (emptied first;
/// passing the previous copy's buffer back saves allocating one per photo).
pub fn training_copy(bytes: &[u8], mut buffer: Vec<u8>) -> Result<TrainingCopy, String> {
    let format = Format::sniff(bytes).ok_or("the file is not an image this app reads")?;
    let orientation = decode::orientation(bytes, format);
    buffer.clear();
    if format == Format::Jpeg {
        if orientation == Orientation::NoTransforms
            && strip_jpeg_metadata(bytes, &mut buffer).is_some()
        {
            return Ok(TrainingCopy {
                bytes: buffer,
                extension: "jpg",
            });
        }
        buffer.clear();
        let mut transform = Transform::op(transform_op(orientation));
        // Rotating a JPEG whose sides are not whole blocks would leave a stripe of noise at the
        // edge; trimming drops those few pixels instead.
        transform.trim = true;
        // Copy no markers: this drops EXIF (GPS, orientation, serials), XMP and comments.
        transform.copy_none = true;
        let rotated = turbojpeg::transform(&transform, bytes).map_err(|error| error.to_string())?;
        buffer.extend_from_slice(&rotated);
        return Ok(TrainingCopy {
            bytes: buffer,
            extension: "jpg",
        });
    }
    if format.is_heif() {
        let image = heif::dimensions(bytes)
            .and_then(|size| heif::decode(bytes, size))
            .map_err(decode::DecodeFailure::into_detail)?;
        buffer = encode_jpeg(&image, buffer)?;
        return Ok(TrainingCopy {
            bytes: buffer,
            extension: "jpg",
        });
    }
    let image_format = format
        .image_format()
        .ok_or_else(|| format!("{format:?} cannot be decoded on this device"))?;
    let mut image = image::load_from_memory_with_format(bytes, image_format)
        .map_err(|error| error.to_string())?;
    image.apply_orientation(orientation);
    image
        .write_to(&mut Cursor::new(&mut buffer), ImageFormat::Png)
        .map_err(|error| error.to_string())?;
    Ok(TrainingCopy {
        bytes: buffer,
        extension: "png",
    })
}

/// Quality of the JPEG a HEIF photo becomes: high enough that the trainer sees no new artefacts.
const HEIF_EXPORT_QUALITY: i32 = 95;

/// Encodes decoded pixels as a JPEG with no metadata, into `buffer`.
pub(crate) fn encode_jpeg(image: &image::RgbImage, mut buffer: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut compressor = turbojpeg::Compressor::new().map_err(|error| error.to_string())?;
    compressor
        .set_quality(HEIF_EXPORT_QUALITY)
        .map_err(|error| error.to_string())?;
    compressor
        .set_subsamp(turbojpeg::Subsamp::Sub2x2)
        .map_err(|error| error.to_string())?;
    let (width, height) = (image.width() as usize, image.height() as usize);
    let pixels = turbojpeg::Image {
        pixels: image.as_raw().as_slice(),
        width,
        pitch: width * 3,
        height,
        format: turbojpeg::PixelFormat::RGB,
    };
    let encoded = compressor
        .compress_to_vec(pixels)
        .map_err(|error| error.to_string())?;
    buffer.extend_from_slice(&encoded);
    Ok(buffer)
}

fn transform_op(orientation: Orientation) -> TransformOp {
    match orientation {
        Orientation::NoTransforms => TransformOp::None,
        Orientation::FlipHorizontal => TransformOp::Hflip,
        Orientation::Rotate180 => TransformOp::Rot180,
        Orientation::FlipVertical => TransformOp::Vflip,
        Orientation::Rotate90FlipH => TransformOp::Transpose,
        Orientation::Rotate90 => TransformOp::Rot90,
        Orientation::Rotate270FlipH => TransformOp::Transverse,
        Orientation::Rotate270 => TransformOp::Rot270,
    }
}

/// The JPEG without its metadata: EXIF and XMP (APP1), maker and vendor segments, comments, and
/// anything after the end of the image (motion-photo videos, extra pictures). Kept: the JFIF
/// header, the ICC colour profile, and Adobe's segment (it says how to read the colours). The
/// compressed image data is copied as it is, so this is fast and exact. `None` when the file's
/// structure is not what this reader expects; the caller then transcodes instead.
fn strip_jpeg_metadata(bytes: &[u8], copy: &mut Vec<u8>) -> Option<()> {
    const MARKER: u8 = 0xFF;
    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    if bytes.get(..2)? != [MARKER, SOI] {
        return None;
    }
    copy.reserve(bytes.len());
    copy.extend_from_slice(&[MARKER, SOI]);
    let mut position = 2;
    loop {
        if *bytes.get(position)? != MARKER {
            return None;
        }
        // A marker may be preceded by any number of fill bytes.
        while *bytes.get(position)? == MARKER {
            position += 1;
        }
        let marker = bytes[position];
        position += 1;
        match marker {
            EOI => {
                copy.extend_from_slice(&[MARKER, EOI]);
                return Some(());
            }
            // Stand-alone markers have no business outside the compressed data.
            SOI | 0x01 | 0xD0..=0xD7 => return None,
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([
            *bytes.get(position)?,
            *bytes.get(position + 1)?,
        ]));
        let payload = bytes.get(position + 2..position + length)?;
        if keeps_segment(marker, payload) {
            copy.extend_from_slice(&[MARKER, marker]);
            copy.extend_from_slice(bytes.get(position..position + length)?);
        }
        position += length;
        if marker == SOS {
            // Compressed data runs to the next marker other than a restart or a stuffed 0xFF00.
            let start = position;
            loop {
                position += bytes
                    .get(position..)?
                    .iter()
                    .position(|&byte| byte == MARKER)?;
                match *bytes.get(position + 1)? {
                    0x00 | 0xD0..=0xD7 => position += 2,
                    MARKER => position += 1,
                    _ => break,
                }
            }
            copy.extend_from_slice(&bytes[start..position]);
        }
    }
}

fn keeps_segment(marker: u8, payload: &[u8]) -> bool {
    const APP0: u8 = 0xE0;
    const APP2: u8 = 0xE2;
    const APP14: u8 = 0xEE;
    const COM: u8 = 0xFE;
    match marker {
        APP0 => payload.starts_with(b"JFIF\0"),
        APP2 => payload.starts_with(b"ICC_PROFILE\0"),
        APP14 => payload.starts_with(b"Adobe"),
        0xE1..=0xEF | COM => false,
        _ => true,
    }
}
