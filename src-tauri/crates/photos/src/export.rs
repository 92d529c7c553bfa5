//! The copy of a photo that leaves the device for training: upright, and with no metadata (GPS,
//! camera serials, the creator's name). JPEGs are rotated losslessly on their DCT blocks, so the
//! trainer sees exactly the pixels the creator took; other formats are re-encoded as PNG.

use std::io::Cursor;

use image::ImageFormat;
use image::metadata::Orientation;
use turbojpeg::{Transform, TransformOp};

use crate::Format;
use crate::decode;

/// An upright, metadata-free copy and the file extension it needs.
pub struct TrainingCopy {
    pub bytes: Vec<u8>,
    pub extension: &'static str,
}

/// Makes the copy of a stored photo that goes into a training set.
pub fn training_copy(bytes: &[u8]) -> Result<TrainingCopy, String> {
    let format = Format::sniff(bytes).ok_or("the file is not an image this app reads")?;
    let orientation = decode::orientation(bytes);
    if format == Format::Jpeg {
        let mut transform = Transform::op(transform_op(orientation));
        // Rotating a JPEG whose sides are not whole blocks would leave a stripe of noise at the
        // edge; trimming drops those few pixels instead.
        transform.trim = true;
        // Copy no markers: this drops EXIF (GPS, orientation, serials), XMP and comments.
        transform.copy_none = true;
        let rotated = turbojpeg::transform(&transform, bytes).map_err(|error| error.to_string())?;
        return Ok(TrainingCopy {
            bytes: rotated.to_vec(),
            extension: "jpg",
        });
    }
    let image_format = format
        .image_format()
        .ok_or_else(|| format!("{format:?} cannot be decoded on this device"))?;
    let mut image = image::load_from_memory_with_format(bytes, image_format)
        .map_err(|error| error.to_string())?;
    image.apply_orientation(orientation);
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|error| error.to_string())?;
    Ok(TrainingCopy {
        bytes: png,
        extension: "png",
    })
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
