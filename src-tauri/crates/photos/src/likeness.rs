//! How much a generated image looks like the avatar's person: its face against the median face of
//! the training photos, with the same identity model as the set's own judgement, and whether it
//! is nearly a copy of one training photo (the model memorised it instead of learning the person).

use serde::Serialize;
use ts_rs::TS;

use crate::identity::Descriptor;

/// A face this far from the training photos' centre, or nearer, scores 1.
const FULL_LIKENESS_DISTANCE: f32 = 0.3;
/// A face this far, or further, scores 0.
const NO_LIKENESS_DISTANCE: f32 = 0.8;
/// Scores from here up look like the person: a distance under 0.5, well inside the 0.55 the
/// set's own judgement allows.
const LOOKS_LIKE_THEM: f32 = 0.6;
/// Scores from here up are "somewhat": the face is about as far as the set's threshold.
const SOMEWHAT: f32 = 0.4;
/// Difference hashes this close (in bits) are the same picture (as the import judges them).
const COPY_BITS: u32 = 8;
/// A copy also has the training photo's face: this close or nearer.
const COPY_FACE_DISTANCE: f32 = 0.35;

/// The likeness in plain words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum LikenessBand {
    LooksLikeThem,
    Somewhat,
    DoesNot,
}

/// One generated image judged against the training photos.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
pub struct Likeness {
    /// 0–1, higher is closer; `None` when the image has no face or the set has no identities.
    pub score: Option<f32>,
    pub band: Option<LikenessBand>,
    /// The face's distance from the training photos' median face.
    pub distance: Option<f32>,
    /// Index of the training photo this image nearly copies.
    pub copy_of: Option<usize>,
}

/// A training photo as likeness needs it.
#[derive(Debug, Clone)]
pub struct TrainingPhoto {
    /// Its faces' descriptors (the subject first).
    pub faces: Vec<Descriptor>,
    pub difference_hash: Option<u64>,
}

/// The score for a distance from the training photos' centre.
pub fn score(distance: f32) -> f32 {
    ((NO_LIKENESS_DISTANCE - distance) / (NO_LIKENESS_DISTANCE - FULL_LIKENESS_DISTANCE))
        .clamp(0.0, 1.0)
}

pub fn band(score: f32) -> LikenessBand {
    if score >= LOOKS_LIKE_THEM {
        LikenessBand::LooksLikeThem
    } else if score >= SOMEWHAT {
        LikenessBand::Somewhat
    } else {
        LikenessBand::DoesNot
    }
}

/// Judges an image with faces `faces` (any order) and difference hash `hash` against `training`.
/// The image's subject is its face closest to the training photos' centre.
pub fn likeness(faces: &[Descriptor], hash: Option<u64>, training: &[TrainingPhoto]) -> Likeness {
    let subjects: Vec<&Descriptor> = training
        .iter()
        .filter_map(|photo| photo.faces.first())
        .collect();
    let centre = Descriptor::median(&subjects);
    let distance = centre.and_then(|centre| {
        faces
            .iter()
            .map(|face| face.distance(&centre))
            .min_by(f32::total_cmp)
    });
    let copy_of = hash.and_then(|hash| {
        training.iter().position(|photo| {
            let same_picture = photo
                .difference_hash
                .is_some_and(|other| (other ^ hash).count_ones() <= COPY_BITS);
            let same_face = match (photo.faces.first(), faces.is_empty()) {
                (Some(face), false) => faces
                    .iter()
                    .any(|generated| generated.distance(face) <= COPY_FACE_DISTANCE),
                (None, true) => true,
                _ => false,
            };
            same_picture && same_face
        })
    });
    let score = distance.map(score);
    Likeness {
        score,
        band: score.map(band),
        distance,
        copy_of,
    }
}

/// The median of a pack's scores, for comparing trainings; `None` when no image has a score.
pub fn median_score(scores: impl IntoIterator<Item = Option<f32>>) -> Option<f32> {
    let mut scores: Vec<f32> = scores.into_iter().flatten().collect();
    if scores.is_empty() {
        return None;
    }
    scores.sort_by(f32::total_cmp);
    let middle = scores.len() / 2;
    Some(if scores.len().is_multiple_of(2) {
        (scores[middle - 1] + scores[middle]) / 2.0
    } else {
        scores[middle]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sameness::DIFFERENT_PERSON_DISTANCE;

    #[test]
    fn the_sets_threshold_sits_between_somewhat_and_looks_like_them() {
        assert_eq!(score(0.2), 1.0);
        assert_eq!(score(0.9), 0.0);
        assert_eq!(band(score(0.45)), LikenessBand::LooksLikeThem);
        assert_eq!(
            band(score(DIFFERENT_PERSON_DISTANCE)),
            LikenessBand::Somewhat
        );
        assert_eq!(band(score(0.7)), LikenessBand::DoesNot);
    }

    #[test]
    fn the_median_ignores_images_without_a_score() {
        assert_eq!(
            median_score([Some(0.2), None, Some(0.8), Some(0.6)]),
            Some(0.6)
        );
        assert_eq!(median_score([Some(0.2), Some(0.4)]), Some(0.3));
        assert_eq!(median_score([None]), None);
    }
}
