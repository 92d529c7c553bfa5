//! Face detection with MediaPipe's BlazeFace models (short range for close faces, full range for
//! small ones), run on the device with tract. Either alone misses a kind of face
//! (assets/models/README.md), so a portrait where the full-range model sees none, but something
//! face-like, is looked at with the short-range model, then searched in the tiles around it.

use std::io::Cursor;
use std::sync::Arc;

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;
use ts_rs::TS;

const SHORT_RANGE_MODEL: &[u8] =
    include_bytes!("../../../../assets/models/face_detection_short_range.onnx");
const FULL_RANGE_MODEL: &[u8] =
    include_bytes!("../../../../assets/models/face_detection_full_range.onnx");

/// Tiles magnify textures that pass for tiny faces, so a tiled search asks for more certainty.
const TILE_MIN_SCORE: f32 = 0.65;

/// Each tile of the tiled search is this share of the picture's width and height, so the four
/// tiles overlap by a fifth: a face small enough to be missed in the whole picture lies whole in
/// one of them, magnified 1.67 times.
const TILE_SHARE: f32 = 0.6;

/// A whole-picture candidate of the full-range model this likely, though below a face, is worth
/// the closer looks (the short-range model, tiles). Every face those looks find in the labelled
/// fixtures left a candidate of at least 0.23; most photos without people leave none, and skip
/// five of the six model runs.
const HINT_SCORE: f32 = 0.2;

/// Boxes overlapping more than this are the same face.
const SAME_FACE_IOU: f32 = 0.3;

/// A point on a face, in pixels of the image it was found in (continuous coordinates: the first
/// pixel spans 0–1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
}

/// BlazeFace's keypoints, in its order: the subject's right eye (image left when upright), left
/// eye, nose tip, mouth centre, right ear tragion, left ear tragion.
pub type Keypoints = [Keypoint; 6];

/// A face, in pixels of the image it was found in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
pub struct Face {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    /// 0–1.
    pub score: f32,
    /// Eyes, nose tip, mouth centre and ears (see [`Keypoints`]).
    pub keypoints: Keypoints,
}

impl Face {
    fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    fn iou(&self, other: &Face) -> f32 {
        let left = self.x.max(other.x);
        let top = self.y.max(other.y);
        let right = (self.x + self.width).min(other.x + other.width);
        let bottom = (self.y + self.height).min(other.y + other.height);
        let overlap = (right - left).max(0.0) * (bottom - top).max(0.0);
        let union = self.area() + other.area() - overlap;
        if union > 0.0 { overlap / union } else { 0.0 }
    }

    /// The face scaled by `factor` (from a working image to the original's pixels).
    pub fn scaled(&self, factor: f32) -> Self {
        Self {
            x: self.x * factor,
            y: self.y * factor,
            width: self.width * factor,
            height: self.height * factor,
            score: self.score,
            keypoints: self.keypoints.map(|point| Keypoint {
                x: point.x * factor,
                y: point.y * factor,
            }),
        }
    }

    /// The face moved by (`dx`, `dy`) pixels.
    pub fn shifted(&self, dx: f32, dy: f32) -> Self {
        Self {
            x: self.x + dx,
            y: self.y + dy,
            keypoints: self.keypoints.map(|point| Keypoint {
                x: point.x + dx,
                y: point.y + dy,
            }),
            ..*self
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the face detector failed: {0}")]
pub struct DetectorError(String);

impl DetectorError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<TractError> for DetectorError {
    fn from(error: TractError) -> Self {
        Self(format!("{error:#}"))
    }
}

struct Model {
    plan: Arc<TypedRunnableModel>,
    size: u32,
    /// Anchor centres in 0–1, in the order of the model's outputs.
    anchors: Vec<(f32, f32)>,
    min_score: f32,
}

impl Model {
    /// `layers`: (grid cells per side, anchors per cell), in output order.
    fn load(
        bytes: &[u8],
        size: u32,
        layers: &[(u32, u32)],
        min_score: f32,
    ) -> Result<Self, DetectorError> {
        let side = size as usize;
        let plan = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(bytes))?
            .with_input_fact(0, f32::fact([1, 3, side, side]).into())?
            .into_optimized()?
            .into_runnable()?;
        let mut anchors = Vec::new();
        for &(cells, per_cell) in layers {
            for y in 0..cells {
                for x in 0..cells {
                    let centre = (
                        (x as f32 + 0.5) / cells as f32,
                        (y as f32 + 0.5) / cells as f32,
                    );
                    anchors.extend(std::iter::repeat_n(centre, per_cell as usize));
                }
            }
        }
        Ok(Self {
            plan,
            size,
            anchors,
            min_score,
        })
    }

    fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, DetectorError> {
        self.candidates(image, self.min_score)
    }

    /// Every anchor's box scoring at least `min_score`, before merging.
    fn candidates(&self, image: &RgbImage, min_score: f32) -> Result<Vec<Face>, DetectorError> {
        let size = self.size as f32;
        let scale = size / image.width().max(image.height()) as f32;
        let width = ((image.width() as f32 * scale).round() as u32).clamp(1, self.size);
        let height = ((image.height() as f32 * scale).round() as u32).clamp(1, self.size);
        let resized = imageops::resize(image, width, height, FilterType::Triangle);
        let pad_x = (self.size - width) / 2;
        let pad_y = (self.size - height) / 2;
        let mut canvas = RgbImage::from_pixel(self.size, self.size, Rgb([0, 0, 0]));
        imageops::replace(&mut canvas, &resized, pad_x.into(), pad_y.into());

        let side = self.size as usize;
        let plane = side * side;
        let mut input = vec![0f32; 3 * plane];
        for (index, pixel) in canvas.pixels().enumerate() {
            for channel in 0..3 {
                input[channel * plane + index] = pixel[channel] as f32 / 127.5 - 1.0;
            }
        }
        let tensor = Tensor::from_shape(&[1, 3, side, side], &input)?;
        let outputs = self.plan.run(tvec!(tensor.into()))?;
        let boxes = outputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let scores = outputs[1].try_as_plain_ram()?.as_slice::<f32>()?;

        let mut faces = Vec::new();
        for (index, (&logit, &(anchor_x, anchor_y))) in scores.iter().zip(&self.anchors).enumerate()
        {
            let score = 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
            if score < min_score {
                continue;
            }
            let raw = &boxes[index * 16..index * 16 + 16];
            let centre_x = (anchor_x + raw[0] / size) * size;
            let centre_y = (anchor_y + raw[1] / size) * size;
            let (box_width, box_height) = (raw[2], raw[3]);
            let keypoint = |k: usize| Keypoint {
                x: (anchor_x * size + raw[4 + 2 * k] - pad_x as f32) / scale,
                y: (anchor_y * size + raw[5 + 2 * k] - pad_y as f32) / scale,
            };
            faces.push(Face {
                x: (centre_x - box_width / 2.0 - pad_x as f32) / scale,
                y: (centre_y - box_height / 2.0 - pad_y as f32) / scale,
                width: box_width / scale,
                height: box_height / scale,
                score,
                keypoints: std::array::from_fn(keypoint),
            });
        }
        Ok(faces)
    }
}

/// Both BlazeFace models, loaded once and shared by every checking thread.
pub struct FaceDetector {
    short_range: Model,
    full_range: Model,
}

impl FaceDetector {
    pub fn load() -> Result<Self, DetectorError> {
        Ok(Self {
            short_range: Model::load(SHORT_RANGE_MODEL, 128, &[(16, 2), (8, 6)], 0.75)?,
            full_range: Model::load(FULL_RANGE_MODEL, 192, &[(48, 1)], 0.6)?,
        })
    }

    /// Faces in `image`, strongest first, in its pixels, for portraits, where a missed face
    /// refuses a good photo: the full-range model, then, when it sees none but something
    /// face-like, the short-range model (close-ups), then the full-range model again on the tiles
    /// around what it saw (faces near the smallest a portrait accepts).
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, DetectorError> {
        match self.whole_picture(image)? {
            Looked::Faces(faces) => Ok(faces),
            Looked::Nothing => Ok(Vec::new()),
            Looked::Hints(hints) => self.detect_in_tiles(image, &hints),
        }
    }

    /// [`FaceDetector::detect`] without the tiled search: faces near the smallest a portrait
    /// accepts may be missed, for less work on photos with something face-like but no face.
    pub fn detect_without_tiles(&self, image: &RgbImage) -> Result<Vec<Face>, DetectorError> {
        match self.whole_picture(image)? {
            Looked::Faces(faces) => Ok(faces),
            Looked::Nothing | Looked::Hints(_) => Ok(Vec::new()),
        }
    }

    /// The whole picture through the full-range model, then, when it left a hint but no face,
    /// the short-range model.
    fn whole_picture(&self, image: &RgbImage) -> Result<Looked, DetectorError> {
        let candidates = self.full_range.candidates(image, HINT_SCORE)?;
        let min_score = self.full_range.min_score;
        let faces = weighted_nms(
            candidates
                .iter()
                .filter(|face| face.score >= min_score)
                .copied()
                .collect(),
        );
        if !faces.is_empty() {
            return Ok(Looked::Faces(faces));
        }
        if candidates.is_empty() {
            return Ok(Looked::Nothing);
        }
        let faces = weighted_nms(self.short_range.detect(image)?);
        if !faces.is_empty() {
            return Ok(Looked::Faces(faces));
        }
        Ok(Looked::Hints(candidates))
    }

    /// Faces found by the full-range model alone: half the work, for photos whose faces are
    /// reported but never required (style sets).
    pub fn detect_full_range(&self, image: &RgbImage) -> Result<Vec<Face>, DetectorError> {
        Ok(weighted_nms(self.full_range.detect(image)?))
    }
}

/// What a look at the whole picture saw.
enum Looked {
    Faces(Vec<Face>),
    /// Candidates too unlikely to be faces, but likely enough to look closer.
    Hints(Vec<Face>),
    Nothing,
}

impl FaceDetector {
    /// Faces in `image` looked for in the tiles of a 2 × 2 grid of overlapping tiles that hold a
    /// hint's centre: faces near the smallest a portrait accepts are too small for the models in
    /// the whole picture.
    fn detect_in_tiles(
        &self,
        image: &RgbImage,
        hints: &[Face],
    ) -> Result<Vec<Face>, DetectorError> {
        let (width, height) = image.dimensions();
        let tile_width = ((width as f32 * TILE_SHARE).ceil() as u32).min(width);
        let tile_height = ((height as f32 * TILE_SHARE).ceil() as u32).min(height);
        let holds_a_hint = |left: u32, top: u32| {
            hints.iter().any(|hint| {
                let (x, y) = (hint.x + hint.width / 2.0, hint.y + hint.height / 2.0);
                x >= left as f32
                    && x <= (left + tile_width) as f32
                    && y >= top as f32
                    && y <= (top + tile_height) as f32
            })
        };
        let mut candidates = Vec::new();
        for (left, top) in [
            (0, 0),
            (width - tile_width, 0),
            (0, height - tile_height),
            (width - tile_width, height - tile_height),
        ] {
            if !holds_a_hint(left, top) {
                continue;
            }
            let tile = imageops::crop_imm(image, left, top, tile_width, tile_height).to_image();
            for face in self
                .full_range
                .detect(&tile)?
                .into_iter()
                .filter(|face| face.score >= TILE_MIN_SCORE)
            {
                candidates.push(face.shifted(left as f32, top as f32));
            }
        }
        Ok(weighted_nms(candidates))
    }
}

/// Merges overlapping boxes into one, each weighted by its score (MediaPipe's blending).
fn weighted_nms(mut candidates: Vec<Face>) -> Vec<Face> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut faces = Vec::new();
    while let Some(best) = candidates.first().copied() {
        let (same, rest): (Vec<Face>, Vec<Face>) = candidates
            .into_iter()
            .partition(|face| face.iou(&best) > SAME_FACE_IOU);
        let total: f32 = same.iter().map(|face| face.score).sum();
        let blend = |value: fn(&Face) -> f32| {
            same.iter()
                .map(|face| value(face) * face.score)
                .sum::<f32>()
                / total
        };
        let keypoints = std::array::from_fn(|k| Keypoint {
            x: same
                .iter()
                .map(|face| face.keypoints[k].x * face.score)
                .sum::<f32>()
                / total,
            y: same
                .iter()
                .map(|face| face.keypoints[k].y * face.score)
                .sum::<f32>()
                / total,
        });
        faces.push(Face {
            x: blend(|face| face.x),
            y: blend(|face| face.y),
            width: blend(|face| face.width),
            height: blend(|face| face.height),
            score: best.score,
            keypoints,
        });
        candidates = rest;
    }
    faces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, score: f32) -> Face {
        Face {
            x,
            y: 0.0,
            width: 10.0,
            height: 10.0,
            score,
            keypoints: [Keypoint::default(); 6],
        }
    }

    #[test]
    fn overlapping_boxes_blend_into_one_face() {
        let faces = weighted_nms(vec![face(0.0, 0.9), face(1.0, 0.9), face(50.0, 0.8)]);
        assert_eq!(faces.len(), 2);
        assert!((faces[0].x - 0.5).abs() < 1e-4, "{faces:?}");
        assert_eq!(faces[1].x, 50.0);
    }

    #[test]
    fn a_plain_image_has_no_face() {
        let detector = FaceDetector::load().expect("models load");
        let grey = RgbImage::from_pixel(640, 480, Rgb([128, 128, 128]));
        assert!(detector.detect(&grey).expect("detect").is_empty());
    }
}
