//! Image quality measured on a small grey copy: sharpness, exposure, contrast, information, noise.
//! Thresholds were set on the generated fixtures (tests/fixtures/make_photos.py) and documented in
//! the README; each metric is kept so a creator can see why a photo was judged.

use image::GrayImage;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Below this, Laplacian variance over luma variance means the photo is out of focus.
pub const BLURRY_BELOW: f32 = 0.02;
/// Above this estimated noise sigma (grey levels), the photo is grainy.
pub const NOISY_ABOVE: f32 = 8.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
pub struct Quality {
    /// Laplacian variance divided by luma variance (so darkness and noise do not fool it).
    pub sharpness: f32,
    /// Mean luma, 0–255.
    pub brightness: f32,
    /// 1st and 99th percentile of luma.
    pub luma_p1: u8,
    pub luma_p99: u8,
    /// Share of pixels at or below 31 and at or above 224.
    pub dark_share: f32,
    pub bright_share: f32,
    /// Standard deviation of luma.
    pub contrast: f32,
    /// Shannon entropy of the luma histogram, bits (0–8).
    pub entropy: f32,
    /// Immerkær's noise estimate, grey levels.
    pub noise: f32,
    /// 0–1, higher is better: the guide's `quality_score`.
    pub score: f32,
}

impl Quality {
    pub fn is_blurry(&self) -> bool {
        self.sharpness < BLURRY_BELOW
    }

    pub fn is_too_dark(&self) -> bool {
        self.luma_p99 < 80 || self.dark_share > 0.6
    }

    pub fn is_too_bright(&self) -> bool {
        self.bright_share > 0.5 || self.luma_p1 > 200
    }

    pub fn is_low_contrast(&self) -> bool {
        self.contrast < 15.0 || self.entropy < 5.0
    }

    pub fn is_noisy(&self) -> bool {
        self.noise > NOISY_ABOVE
    }
}

/// Measures `grey`; `sharpness_region` (x, y, width, height), usually the face, is where focus
/// matters, since a portrait's background is often blurred on purpose.
pub fn measure(grey: &GrayImage, sharpness_region: Option<(u32, u32, u32, u32)>) -> Quality {
    let mut histogram = [0u64; 256];
    for pixel in grey.pixels() {
        histogram[pixel[0] as usize] += 1;
    }
    let total = (grey.width() as u64 * grey.height() as u64).max(1) as f64;
    let mean = histogram
        .iter()
        .enumerate()
        .map(|(value, &count)| value as f64 * count as f64)
        .sum::<f64>()
        / total;
    let variance = histogram
        .iter()
        .enumerate()
        .map(|(value, &count)| (value as f64 - mean).powi(2) * count as f64)
        .sum::<f64>()
        / total;
    let percentile = |share: f64| {
        let mut seen = 0u64;
        for (value, &count) in histogram.iter().enumerate() {
            seen += count;
            if seen as f64 >= share * total {
                return value as u8;
            }
        }
        255
    };
    let entropy = histogram
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = count as f64 / total;
            -p * p.log2()
        })
        .sum::<f64>();
    let dark_share = histogram[..=31].iter().sum::<u64>() as f64 / total;
    let bright_share = histogram[224..].iter().sum::<u64>() as f64 / total;

    let region = sharpness_region
        .map(|(x, y, width, height)| {
            image::imageops::crop_imm(grey, x, y, width, height).to_image()
        })
        .filter(|crop| crop.width() >= 16 && crop.height() >= 16);
    let sharpness = normalised_laplacian_variance(region.as_ref().unwrap_or(grey));
    let noise = immerkaer_sigma(grey);

    let mut quality = Quality {
        sharpness,
        brightness: mean as f32,
        luma_p1: percentile(0.01),
        luma_p99: percentile(0.99),
        dark_share: dark_share as f32,
        bright_share: bright_share as f32,
        contrast: variance.sqrt() as f32,
        entropy: entropy as f32,
        noise,
        score: 0.0,
    };
    quality.score = score(&quality);
    quality
}

/// Each aspect scores 0–1 and the weakest ones pull the total down most (a weighted geometric mean).
fn score(quality: &Quality) -> f32 {
    let ramp = |value: f32, bad: f32, good: f32| ((value - bad) / (good - bad)).clamp(0.0, 1.0);
    let sharpness = ramp(quality.sharpness, BLURRY_BELOW * 0.5, BLURRY_BELOW * 4.0);
    let exposure = ramp(quality.luma_p99 as f32, 60.0, 160.0)
        * (1.0 - ramp(quality.bright_share, 0.25, 0.6))
        * (1.0 - ramp(quality.dark_share, 0.4, 0.8));
    let contrast = ramp(quality.contrast, 10.0, 45.0) * ramp(quality.entropy, 4.0, 6.5);
    let clean = 1.0 - ramp(quality.noise, NOISY_ABOVE * 0.5, NOISY_ABOVE * 2.0);
    let parts = [
        (sharpness, 0.4),
        (exposure, 0.25),
        (contrast, 0.2),
        (clean, 0.15),
    ];
    let log_sum: f32 = parts
        .iter()
        .map(|&(value, weight)| weight * value.max(0.02).ln())
        .sum();
    (log_sum.exp() * 1000.0).round() / 1000.0
}

fn normalised_laplacian_variance(grey: &GrayImage) -> f32 {
    let (width, height) = grey.dimensions();
    if width < 3 || height < 3 {
        return 0.0;
    }
    let at = |x: u32, y: u32| grey.get_pixel(x, y)[0] as f64;
    let (mut sum, mut sum_sq, mut luma_sum, mut luma_sq) = (0f64, 0f64, 0f64, 0f64);
    let mut count = 0f64;
    for y in 1..height - 1 {
        for x in 1..width - 1 {
            let centre = at(x, y);
            let laplacian =
                at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * centre;
            sum += laplacian;
            sum_sq += laplacian * laplacian;
            luma_sum += centre;
            luma_sq += centre * centre;
            count += 1.0;
        }
    }
    let laplacian_variance = sum_sq / count - (sum / count).powi(2);
    let luma_variance = luma_sq / count - (luma_sum / count).powi(2);
    if luma_variance < 1.0 {
        return 0.0;
    }
    (laplacian_variance / luma_variance) as f32
}

/// J. Immerkær, "Fast Noise Variance Estimation" (1996).
fn immerkaer_sigma(grey: &GrayImage) -> f32 {
    let (width, height) = grey.dimensions();
    if width < 3 || height < 3 {
        return 0.0;
    }
    let at = |x: u32, y: u32| grey.get_pixel(x, y)[0] as f64;
    let mut total = 0f64;
    for y in 1..height - 1 {
        for x in 1..width - 1 {
            let response = at(x - 1, y - 1) - 2.0 * at(x, y - 1) + at(x + 1, y - 1)
                - 2.0 * at(x - 1, y)
                + 4.0 * at(x, y)
                - 2.0 * at(x + 1, y)
                + at(x - 1, y + 1)
                - 2.0 * at(x, y + 1)
                + at(x + 1, y + 1);
            total += response.abs();
        }
    }
    let interior = (width - 2) as f64 * (height - 2) as f64;
    (total * (std::f64::consts::PI / 2.0).sqrt() / (6.0 * interior)) as f32
}

/// A 64-bit difference hash: near-identical pictures differ in few bits.
pub fn difference_hash(grey: &GrayImage) -> u64 {
    let small = image::imageops::resize(grey, 9, 8, image::imageops::FilterType::Triangle);
    let mut hash = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            hash <<= 1;
            if small.get_pixel(x, y)[0] < small.get_pixel(x + 1, y)[0] {
                hash |= 1;
            }
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use image::Luma;

    use super::*;

    fn pattern(width: u32, height: u32, f: impl Fn(u32, u32) -> u8) -> GrayImage {
        GrayImage::from_fn(width, height, |x, y| Luma([f(x, y)]))
    }

    #[test]
    fn a_flat_grey_image_is_low_contrast_and_soft() {
        let quality = measure(&pattern(64, 64, |_, _| 128), None);
        assert!(quality.is_low_contrast());
        assert!(quality.is_blurry());
        assert!(!quality.is_too_dark() && !quality.is_too_bright());
    }

    #[test]
    fn a_sharp_checkerboard_is_sharp_and_contrasty() {
        let quality = measure(
            &pattern(
                64,
                64,
                |x, y| if (x / 4 + y / 4) % 2 == 0 { 30 } else { 220 },
            ),
            None,
        );
        assert!(!quality.is_blurry(), "{quality:?}");
        assert!(quality.contrast > 80.0);
    }

    #[test]
    fn exposure_extremes_are_named() {
        assert!(measure(&pattern(64, 64, |x, _| (x % 20) as u8), None).is_too_dark());
        assert!(measure(&pattern(64, 64, |x, _| 235 + (x % 20) as u8), None).is_too_bright());
    }

    #[test]
    fn difference_hash_ignores_scale_but_not_content() {
        let gradient = |width| {
            pattern(width, width, move |x, y| {
                ((x * 255 / width) as u8) ^ ((y * 7) as u8 & 0x10)
            })
        };
        let a = difference_hash(&gradient(64));
        let b = difference_hash(&gradient(128));
        let other = difference_hash(&pattern(64, 64, |x, y| {
            ((y * 255 / 64) as u8).wrapping_add(x as u8)
        }));
        assert!((a ^ b).count_ones() <= 4, "{}", (a ^ b).count_ones());
        assert!((a ^ other).count_ones() > 10);
    }
}
