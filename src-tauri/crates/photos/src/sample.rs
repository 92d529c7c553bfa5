//! Test mode's stand-in for a generated image: one of the avatar's own photos, re-cropped,
//! mirrored on odd seeds and tinted by the prompt, with a striped band along its foot that marks
//! it as simulated. It goes through the same likeness check as a real image.

use image::{DynamicImage, Rgb, RgbImage};

use crate::{Format, decode, export};

/// The simulated image's long side.
const SAMPLE_LONG_SIDE: u32 = 768;
/// The band marking a simulated image, as a share of its height.
const BAND_SHARE: f32 = 0.06;

/// A simulated sample made from the photo `bytes`, as a JPEG: `seed` chooses the crop and the
/// mirror, `prompt` the tint.
pub fn simulated_sample(bytes: &[u8], seed: u64, prompt: &str) -> Result<Vec<u8>, String> {
    let format = Format::sniff(bytes).ok_or("the photo is not an image this app reads")?;
    let stored = decode::stored_dimensions(bytes, format, u32::MAX)
        .map_err(decode::DecodeFailure::into_detail)?;
    let orientation = decode::orientation(bytes, format);
    let photo = decode::working_copy(
        bytes,
        format,
        stored,
        u32::MAX,
        orientation,
        SAMPLE_LONG_SIDE,
    )
    .map_err(decode::DecodeFailure::into_detail)?;
    // 82–94% of each side, placed by the seed: the face stays, the framing moves.
    let share = 0.82 + (seed % 13) as f32 * 0.01;
    let (width, height) = (
        ((photo.width() as f32 * share) as u32).max(1),
        ((photo.height() as f32 * share) as u32).max(1),
    );
    let left = ((photo.width() - width) as u64 * (seed % 7) / 6) as u32;
    let top = ((photo.height() - height) as u64 * (seed / 7 % 5) / 4) as u32;
    let mut sample = image::imageops::crop_imm(&photo, left, top, width, height).to_image();
    if !seed.is_multiple_of(2) {
        image::imageops::flip_horizontal_in_place(&mut sample);
    }
    tint(&mut sample, prompt);
    mark_simulated(&mut sample);
    let sample = DynamicImage::ImageRgb8(sample).into_rgb8();
    export::encode_jpeg(&sample, Vec::new())
}

/// Shifts the colours towards one chosen by the prompt's words.
fn tint(image: &mut RgbImage, prompt: &str) {
    let hash = prompt
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let colour = [(hash >> 8) as u8, (hash >> 24) as u8, (hash >> 40) as u8];
    for pixel in image.pixels_mut() {
        for channel in 0..3 {
            let mixed = u16::from(pixel[channel]) * 4 + u16::from(colour[channel]);
            pixel[channel] = (mixed / 5) as u8;
        }
    }
}

/// Black and yellow stripes along the foot of the image.
fn mark_simulated(image: &mut RgbImage) {
    let band = ((image.height() as f32 * BAND_SHARE) as u32).max(4);
    let top = image.height().saturating_sub(band);
    for y in top..image.height() {
        for x in 0..image.width() {
            let stripe = (x + y) / 12 % 2 == 0;
            let colour = if stripe {
                Rgb([250, 204, 21])
            } else {
                Rgb([20, 20, 20])
            };
            image.put_pixel(x, y, colour);
        }
    }
}
