//! Whose face it is: a 128-number descriptor per face from dlib's face-recognition ResNet
//! (assets/models/README.md), run on the device with tract on a 150 × 150 chip aligned from
//! BlazeFace's keypoints. Two faces of one person are close in Euclidean distance; the head pose
//! comes from the same keypoints.

use std::io::Cursor;
use std::sync::{Arc, OnceLock};

use image::{Rgb, RgbImage};
use serde::Serialize;
use tract_onnx::prelude::*;
use ts_rs::TS;

use crate::faces::{DetectorError, Face, Keypoint};

const IDENTITY_MODEL: &[u8] =
    include_bytes!("../../../../assets/models/dlib_face_recognition_resnet_model_v1.onnx");

/// Numbers in a descriptor.
pub const DESCRIPTOR_LEN: usize = 128;
/// Side of the aligned face chip the model reads, pixels.
pub const CHIP_SIDE: u32 = 150;

/// Where the eyes, nose tip and mouth centre of dlib's mean face fall in a 150-pixel chip with a
/// quarter of padding (`get_face_chip(size = 150, padding = 0.25)`): image-left eye, image-right
/// eye, nose tip, mouth centre. From dlib's 5-point mean face (eye corners, subnasale) and its
/// 68-point mean shape (nose tip, inner lips).
const TEMPLATE: [(f32, f32); 4] = [
    (47.73, 47.14),
    (100.28, 47.12),
    (74.01, 76.56),
    (74.01, 105.86),
];

/// A face's identity: close descriptors are the same person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Descriptor(pub [f32; DESCRIPTOR_LEN]);

impl Descriptor {
    /// Euclidean distance: about 0.2–0.4 for two photos of one person, 0.6 and more for two people.
    pub fn distance(&self, other: &Descriptor) -> f32 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt()
    }

    /// The element-wise median of `descriptors`: a centre that one odd face cannot pull away.
    pub fn median(descriptors: &[&Descriptor]) -> Option<Descriptor> {
        if descriptors.is_empty() {
            return None;
        }
        let mut centre = [0f32; DESCRIPTOR_LEN];
        let mut column = Vec::with_capacity(descriptors.len());
        for (index, value) in centre.iter_mut().enumerate() {
            column.clear();
            column.extend(descriptors.iter().map(|descriptor| descriptor.0[index]));
            column.sort_by(f32::total_cmp);
            let middle = column.len() / 2;
            *value = if column.len() % 2 == 1 {
                column[middle]
            } else {
                (column[middle - 1] + column[middle]) / 2.0
            };
        }
        Some(Descriptor(centre))
    }
}

/// Which way a head is turned, from the face's keypoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Pose {
    /// Turned less than about 15°.
    Frontal,
    /// Turned about 15–35°: both eyes show, the far cheek narrows.
    ThreeQuarter,
    /// Turned further: the nose reaches the far cheek's outline.
    Profile,
}

/// How far a head is turned, -1 (towards image left) to 1 (towards image right), 0 facing the
/// camera: where the nose tip falls between the two ear points, along the line joining them.
/// A head of usual proportions gives about 1.33·tan(yaw), so 0.36 is about 15° and 0.9 about 34°;
/// past that the far ear is hidden and BlazeFace guesses it, so the value saturates.
pub fn yaw(face: &Face) -> f32 {
    let [_, _, nose, _, right_ear, left_ear] = face.keypoints;
    let (axis_x, axis_y) = (left_ear.x - right_ear.x, left_ear.y - right_ear.y);
    let length = (axis_x * axis_x + axis_y * axis_y).sqrt();
    if length <= f32::EPSILON {
        return 0.0;
    }
    let along = |point: Keypoint| {
        ((point.x - right_ear.x) * axis_x + (point.y - right_ear.y) * axis_y) / length
    };
    let to_right_ear = along(nose);
    let to_left_ear = length - to_right_ear;
    ((to_right_ear - to_left_ear) / length).clamp(-1.0, 1.0)
}

/// Yaw magnitudes that separate the poses (see [`yaw`]).
const THREE_QUARTER_YAW: f32 = 0.3;
const PROFILE_YAW: f32 = 0.8;

pub fn pose(face: &Face) -> Pose {
    let turned = yaw(face).abs();
    if turned < THREE_QUARTER_YAW {
        Pose::Frontal
    } else if turned < PROFILE_YAW {
        Pose::ThreeQuarter
    } else {
        Pose::Profile
    }
}

/// A similarity transform (scale, rotation, translation): `x' = a·x − b·y + tx`,
/// `y' = b·x + a·y + ty`.
#[derive(Debug, Clone, Copy)]
struct Similarity {
    a: f32,
    b: f32,
    tx: f32,
    ty: f32,
}

impl Similarity {
    /// The least-squares similarity taking `from` to `to` (Umeyama's, without reflection).
    fn fit(from: &[(f32, f32)], to: &[(f32, f32)]) -> Option<Self> {
        let count = from.len().min(to.len()) as f32;
        if count < 2.0 {
            return None;
        }
        let mean = |points: &[(f32, f32)]| {
            let (x, y) = points
                .iter()
                .fold((0.0, 0.0), |(x, y), point| (x + point.0, y + point.1));
            (x / count, y / count)
        };
        let (from_x, from_y) = mean(from);
        let (to_x, to_y) = mean(to);
        let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
        for (&(px, py), &(qx, qy)) in from.iter().zip(to) {
            let (px, py, qx, qy) = (px - from_x, py - from_y, qx - to_x, qy - to_y);
            dot += px * qx + py * qy;
            cross += px * qy - py * qx;
            norm += px * px + py * py;
        }
        if norm <= f32::EPSILON {
            return None;
        }
        let (a, b) = (dot / norm, cross / norm);
        Some(Self {
            a,
            b,
            tx: to_x - (a * from_x - b * from_y),
            ty: to_y - (b * from_x + a * from_y),
        })
    }

    fn apply(&self, (x, y): (f32, f32)) -> (f32, f32) {
        (
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        )
    }

    fn scale(&self) -> f32 {
        (self.a * self.a + self.b * self.b).sqrt()
    }
}

/// The face cut out of `image`, upright and scaled so its eyes, nose and mouth sit where the
/// identity model expects them (dlib's `get_face_chip`, size 150, padding 0.25, with dlib's pixel
/// grid). A face bigger than the chip is averaged over each chip pixel's footprint, not just
/// sampled, as dlib does with its image pyramid.
pub fn align(image: &RgbImage, face: &Face) -> RgbImage {
    let points: Vec<(f32, f32)> = face.keypoints[..4]
        .iter()
        .map(|point| (point.x, point.y))
        .collect();
    let side = CHIP_SIDE as f32;
    // Keypoints all in one place cannot be fitted: then the box's centre, at its size (the
    // template's face is about 100 of the chip's 150 pixels wide).
    let fallback = {
        let a = face.width.max(1.0) / 100.0;
        Similarity {
            a,
            b: 0.0,
            tx: face.x + face.width / 2.0 - a * side / 2.0,
            ty: face.y + face.height / 2.0 - a * side / 2.0,
        }
    };
    let transform = Similarity::fit(&TEMPLATE, &points).unwrap_or(fallback);
    let scale = transform.scale().max(1e-3);
    // dlib's `centered_drect` and `extract_image_chip`: chip pixel u samples template
    // coordinate 75 + (u − 74.5)·(150 − 1/s)/149, s the template → image scale.
    let step = (side - 1.0 / scale) / (side - 1.0);
    let template = |u: f32| side / 2.0 + (u - (side - 1.0) / 2.0) * step;
    // Samples per chip pixel side: about one per image pixel under it, at most 4 × 4.
    let samples = (scale * step).ceil().clamp(1.0, 4.0) as u32;
    let mut chip = RgbImage::new(CHIP_SIDE, CHIP_SIDE);
    for (u, v, pixel) in chip.enumerate_pixels_mut() {
        let mut sum = [0f32; 3];
        for sub_y in 0..samples {
            for sub_x in 0..samples {
                let offset_x = (sub_x as f32 + 0.5) / samples as f32 - 0.5;
                let offset_y = (sub_y as f32 + 0.5) / samples as f32 - 0.5;
                let (x, y) =
                    transform.apply((template(u as f32 + offset_x), template(v as f32 + offset_y)));
                // Keypoints are in continuous coordinates (a pixel's centre at +0.5);
                // bilinear sampling wants pixel centres on whole numbers.
                let rgb = bilinear(image, x - 0.5, y - 0.5);
                for channel in 0..3 {
                    sum[channel] += rgb[channel];
                }
            }
        }
        let count = (samples * samples) as f32;
        *pixel = Rgb(sum.map(|value| (value / count).round().clamp(0.0, 255.0) as u8));
    }
    chip
}

/// The colour at (x, y), pixel centres on whole numbers; black outside the image.
fn bilinear(image: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (width, height) = (image.width() as i64, image.height() as i64);
    let (left, top) = (x.floor(), y.floor());
    let (fx, fy) = (x - left, y - top);
    let (left, top) = (left as i64, top as i64);
    let at = |px: i64, py: i64| -> [f32; 3] {
        if px < 0 || py < 0 || px >= width || py >= height {
            [0.0; 3]
        } else {
            image.get_pixel(px as u32, py as u32).0.map(f32::from)
        }
    };
    let (p00, p10, p01, p11) = (
        at(left, top),
        at(left + 1, top),
        at(left, top + 1),
        at(left + 1, top + 1),
    );
    let mut out = [0f32; 3];
    for channel in 0..3 {
        let upper = p00[channel] * (1.0 - fx) + p10[channel] * fx;
        let lower = p01[channel] * (1.0 - fx) + p11[channel] * fx;
        out[channel] = upper * (1.0 - fy) + lower * fy;
    }
    out
}

/// The identity model, loaded once and shared by every checking thread.
pub struct FaceEmbedder {
    plan: Arc<TypedRunnableModel>,
}

impl FaceEmbedder {
    pub fn load() -> Result<Self, DetectorError> {
        let side = CHIP_SIDE as usize;
        let plan = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(IDENTITY_MODEL))?
            .with_input_fact(0, f32::fact([1, 3, side, side]).into())?
            .into_optimized()?
            .into_runnable()?;
        Ok(Self { plan })
    }

    /// The model, loaded the first time it is asked for (a quarter of a second, 25 MB of weights)
    /// and shared from then on.
    pub fn shared() -> Result<&'static FaceEmbedder, DetectorError> {
        static SHARED: OnceLock<Result<FaceEmbedder, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| FaceEmbedder::load().map_err(|error| error.to_string()))
            .as_ref()
            .map_err(|error| DetectorError::new(error.clone()))
    }

    /// The descriptor of an aligned 150 × 150 chip (see [`align`]).
    pub fn describe_chip(&self, chip: &RgbImage) -> Result<Descriptor, DetectorError> {
        let side = CHIP_SIDE as usize;
        let plane = side * side;
        let mut input = vec![0f32; 3 * plane];
        for (index, pixel) in chip.pixels().take(plane).enumerate() {
            for channel in 0..3 {
                input[channel * plane + index] = pixel[channel] as f32;
            }
        }
        let tensor = Tensor::from_shape(&[1, 3, side, side], &input)?;
        let outputs = self.plan.run(tvec!(tensor.into()))?;
        let values = outputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let descriptor: [f32; DESCRIPTOR_LEN] = values
            .get(..DESCRIPTOR_LEN)
            .and_then(|values| values.try_into().ok())
            .ok_or_else(|| DetectorError::new("the identity model gave no descriptor"))?;
        Ok(Descriptor(descriptor))
    }

    /// The descriptor of `face`, found in `image` (same pixels).
    pub fn describe(&self, image: &RgbImage, face: &Face) -> Result<Descriptor, DetectorError> {
        self.describe_chip(&align(image, face))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_a_known_similarity() {
        let truth = Similarity {
            a: 1.7,
            b: -0.4,
            tx: 12.0,
            ty: -3.0,
        };
        let to: Vec<_> = TEMPLATE.iter().map(|&point| truth.apply(point)).collect();
        let fitted = Similarity::fit(&TEMPLATE, &to).expect("fit");
        assert!((fitted.a - truth.a).abs() < 1e-4, "{fitted:?}");
        assert!((fitted.b - truth.b).abs() < 1e-4, "{fitted:?}");
        assert!((fitted.tx - truth.tx).abs() < 1e-2, "{fitted:?}");
        assert!((fitted.ty - truth.ty).abs() < 1e-2, "{fitted:?}");
    }

    #[test]
    fn the_median_ignores_one_odd_descriptor() {
        let one = Descriptor([0.1; DESCRIPTOR_LEN]);
        let two = Descriptor([0.2; DESCRIPTOR_LEN]);
        let odd = Descriptor([5.0; DESCRIPTOR_LEN]);
        let centre = Descriptor::median(&[&one, &odd, &two]).expect("centre");
        assert!(centre.distance(&two) < 1e-6);
        let even = Descriptor::median(&[&one, &two]).expect("centre");
        assert!((even.0[0] - 0.15).abs() < 1e-6);
    }

    fn face_with(nose_x: f32) -> Face {
        let point = |x, y| Keypoint { x, y };
        Face {
            x: 0.0,
            y: 0.0,
            width: 100.0,
            height: 100.0,
            score: 1.0,
            keypoints: [
                point(35.0, 40.0),
                point(65.0, 40.0),
                point(nose_x, 60.0),
                point(50.0, 80.0),
                point(10.0, 50.0),
                point(90.0, 50.0),
            ],
        }
    }

    #[test]
    fn the_pose_follows_the_nose_between_the_ears() {
        assert_eq!(pose(&face_with(50.0)), Pose::Frontal);
        assert_eq!(pose(&face_with(70.0)), Pose::ThreeQuarter);
        assert_eq!(pose(&face_with(25.0)), Pose::ThreeQuarter);
        assert_eq!(pose(&face_with(88.0)), Pose::Profile);
        assert!(yaw(&face_with(70.0)) > 0.0);
    }
}
