//! Curating a training set from a folder of any size: find the main person (the largest group of
//! photos whose faces match, or the person of a reference set), drop other people, copies and weak
//! photos, and pick the photos that together are best and most varied: head pose, framing,
//! lighting and background.

use serde::Serialize;
use ts_rs::TS;

use crate::identity::{Descriptor, Pose};
use crate::sameness::{DIFFERENT_PERSON_DISTANCE, SAME_PERSON_PAIR};
use crate::{Code, Report};

/// Faces this close to the main person's centre are picked first; those between this and
/// [`DIFFERENT_PERSON_DISTANCE`] only when the confident ones run out. On the labelled fixtures
/// every same-person photo was within 0.45 of its set's other photos, while other people's
/// profiles came as close as 0.55 to a set of frontal photos.
pub const CONFIDENT_SAME_PERSON: f32 = 0.45;

/// Difference hashes this close (in bits) are the same picture (as the import judges them).
const SAME_PICTURE_BITS: u32 = 8;

/// How much of the frame the face takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// The face is at least 38% of the photo's height.
    CloseUp,
    /// Head and shoulders: 20–38%.
    Shoulders,
    /// Half the body or more: under 20%.
    HalfBody,
}

impl Framing {
    pub fn of(face_height: f32, photo_height: f32) -> Self {
        let share = face_height / photo_height.max(1.0);
        if share >= 0.38 {
            Self::CloseUp
        } else if share >= 0.2 {
            Self::Shoulders
        } else {
            Self::HalfBody
        }
    }
}

/// The light of a photo, from its mean brightness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Lighting {
    Low,
    Even,
    Bright,
}

impl Lighting {
    pub fn of(brightness: f32) -> Self {
        if brightness < 90.0 {
            Self::Low
        } else if brightness < 160.0 {
            Self::Even
        } else {
            Self::Bright
        }
    }
}

/// What curation needs to know of one checked photo.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The checks' own refusals (no face, blurry, too small…): such a photo is never picked.
    pub reasons: Vec<Code>,
    pub md5: String,
    pub difference_hash: Option<u64>,
    pub pixels: u64,
    pub quality: f32,
    pub brightness: f32,
    /// Candidate faces: descriptor, pose, framing.
    pub faces: Vec<CandidateFace>,
}

#[derive(Debug, Clone, Copy)]
pub struct CandidateFace {
    pub descriptor: Descriptor,
    pub pose: Pose,
    pub yaw: f32,
    pub framing: Framing,
}

impl Candidate {
    pub fn from_report(report: &Report) -> Self {
        let faces = report
            .identities
            .iter()
            .map(|identity| {
                let face = &report.faces[identity.face];
                CandidateFace {
                    descriptor: identity.descriptor,
                    pose: identity.pose,
                    yaw: crate::identity::yaw(face),
                    framing: Framing::of(face.height, report.height as f32),
                }
            })
            .collect();
        Self {
            reasons: report.reasons.clone(),
            md5: report.md5.clone(),
            difference_hash: report.difference_hash,
            pixels: u64::from(report.width) * u64::from(report.height),
            quality: report.quality.map(|quality| quality.score).unwrap_or(0.0),
            brightness: report
                .quality
                .map(|quality| quality.brightness)
                .unwrap_or(0.0),
            faces,
        }
    }
}

/// The decision on one photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub picked: bool,
    /// Why it was not picked (codes); empty when picked.
    pub reasons: Vec<Code>,
    /// The same in words, or why it was picked.
    pub why: String,
    /// Index of the photo this one is a copy of (the better copy, kept).
    pub copy_of: Option<usize>,
    /// Distance of its face from the main person's centre.
    pub distance: Option<f32>,
    pub pose: Option<Pose>,
    pub framing: Option<Framing>,
    pub lighting: Option<Lighting>,
}

/// Curates `candidates` down to at most `count` photos of one person. The person is the one of
/// `reference` (descriptors of photos known to be them, e.g. the avatar's own) when given,
/// otherwise the largest group of matching faces among the candidates. None when `keep_going`
/// said stop. The work grows linearly with the candidates and their faces.
pub fn curate(
    candidates: &[Candidate],
    count: usize,
    reference: &[Descriptor],
    keep_going: &dyn Fn() -> bool,
) -> Option<Vec<Choice>> {
    let mut choices: Vec<Choice> = candidates
        .iter()
        .map(|candidate| Choice {
            picked: false,
            reasons: candidate.reasons.clone(),
            why: String::new(),
            copy_of: None,
            distance: None,
            pose: None,
            framing: None,
            lighting: Some(Lighting::of(candidate.brightness)),
        })
        .collect();

    // The main person's centre, then each photo's subject: its face nearest that centre.
    let centre = if reference.is_empty() {
        main_centre(candidates, keep_going)?
    } else {
        Descriptor::median(&reference.iter().collect::<Vec<_>>())
    };
    let mut subject: Vec<Option<usize>> = vec![None; candidates.len()];
    if let Some(centre) = centre {
        for (index, candidate) in candidates.iter().enumerate() {
            let nearest = candidate
                .faces
                .iter()
                .enumerate()
                .map(|(face, candidate)| (candidate.descriptor.distance(&centre), face))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((distance, face)) = nearest {
                let choice = &mut choices[index];
                choice.distance = Some(distance);
                choice.pose = Some(candidate.faces[face].pose);
                choice.framing = Some(candidate.faces[face].framing);
                if distance > DIFFERENT_PERSON_DISTANCE {
                    choice.reasons.push(Code::DifferentPerson);
                } else {
                    subject[index] = Some(face);
                }
            }
        }
    }

    // Copies: of two photos of the same picture only the better one can be picked.
    let eligible = |choices: &[Choice], index: usize| {
        choices[index].reasons.is_empty() && subject[index].is_some()
    };
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&index| eligible(&choices, index))
        .collect();
    // Better copies first, so the one kept is the best.
    order.sort_by(|&a, &b| {
        let (a, b) = (&candidates[a], &candidates[b]);
        b.pixels
            .cmp(&a.pixels)
            .then(b.quality.total_cmp(&a.quality))
    });
    let mut kept = KeptPictures::default();
    for index in order {
        if !keep_going() {
            return None;
        }
        let candidate = &candidates[index];
        match kept.first_copy_of(candidates, candidate) {
            Some(original) => {
                let code = if candidates[original].md5 == candidate.md5 {
                    Code::Duplicate
                } else {
                    Code::NearDuplicate
                };
                choices[index].reasons.push(code);
                choices[index].copy_of = Some(original);
            }
            None => kept.keep(index, candidate),
        }
    }
    let mut kept = kept.indices;
    kept.sort_unstable();

    // Greedy picking: each step takes the photo whose quality plus what it adds to the set's
    // variety is highest.
    let mut picked: Vec<usize> = Vec::new();
    let confident = |index: &usize| {
        choices[*index]
            .distance
            .is_some_and(|distance| distance <= CONFIDENT_SAME_PERSON)
    };
    let (mut remaining, mut doubtful): (Vec<usize>, Vec<usize>) =
        kept.iter().copied().partition(confident);
    let mut counts = Counts::default();
    loop {
        if remaining.is_empty() {
            // The confident ones are used up: then the less certain, if room is left.
            remaining.append(&mut doubtful);
        }
        if picked.len() >= count || remaining.is_empty() {
            break;
        }
        let value = |index: usize| {
            let candidate = &candidates[index];
            let face = &candidate.faces[subject[index].unwrap_or(0)];
            let lighting = Lighting::of(candidate.brightness);
            let background = picked
                .iter()
                .filter_map(|&other| {
                    Some(
                        (candidates[other].difference_hash? ^ candidate.difference_hash?)
                            .count_ones(),
                    )
                })
                .min()
                .map_or(1.0, |bits| (bits as f32 / 32.0).min(1.0));
            candidate.quality
                + 0.6 * counts.novelty_pose(face.pose, face.yaw)
                + 0.4 * counts.novelty_framing(face.framing)
                + 0.25 * counts.novelty_lighting(lighting)
                + 0.25 * background
        };
        let (position, _) = remaining
            .iter()
            .enumerate()
            .map(|(position, &index)| (position, value(index)))
            .fold((0, f32::NEG_INFINITY), |best, (position, value)| {
                if value > best.1 {
                    (position, value)
                } else {
                    best
                }
            });
        let index = remaining.remove(position);
        let candidate = &candidates[index];
        let face = &candidate.faces[subject[index].unwrap_or(0)];
        counts.add(
            face.pose,
            face.yaw,
            face.framing,
            Lighting::of(candidate.brightness),
        );
        picked.push(index);
    }
    for &index in &picked {
        choices[index].picked = true;
    }
    for &index in remaining.iter().chain(&doubtful) {
        choices[index].reasons.push(Code::LimitReached);
    }
    for choice in &mut choices {
        choice.why = words(choice, count);
    }
    Some(choices)
}

/// The pictures kept so far, found by their MD5 or, for a near copy, by their difference hash:
/// two hashes within [`SAME_PICTURE_BITS`] bits agree exactly on at least one of
/// `SAME_PICTURE_BITS + 1` slices (pigeonhole), so each lookup compares only the pictures that
/// share a slice, not every one kept.
#[derive(Default)]
struct KeptPictures {
    /// In the order kept.
    indices: Vec<usize>,
    by_md5: std::collections::HashMap<String, usize>,
    /// (slice, its bits) → positions in `indices`.
    by_slice: std::collections::HashMap<(u32, u64), Vec<usize>>,
}

const HASH_SLICES: u32 = SAME_PICTURE_BITS + 1;

fn hash_slices(hash: u64) -> impl Iterator<Item = (u32, u64)> {
    (0..HASH_SLICES).map(move |slice| {
        let start = slice * 64 / HASH_SLICES;
        let end = (slice + 1) * 64 / HASH_SLICES;
        let bits = (hash >> start) & ((1u64 << (end - start)) - 1);
        (slice, bits)
    })
}

impl KeptPictures {
    /// The first kept picture (in the order kept) that `candidate` is a copy of.
    fn first_copy_of(&self, candidates: &[Candidate], candidate: &Candidate) -> Option<usize> {
        let same_file = self.by_md5.get(&candidate.md5).copied();
        let near = candidate.difference_hash.and_then(|hash| {
            hash_slices(hash)
                .filter_map(|slice| self.by_slice.get(&slice))
                .flatten()
                .copied()
                .filter(|&position| {
                    candidates[self.indices[position]]
                        .difference_hash
                        .is_some_and(|other| (other ^ hash).count_ones() <= SAME_PICTURE_BITS)
                })
                .min()
        });
        [same_file, near]
            .into_iter()
            .flatten()
            .min()
            .map(|position| self.indices[position])
    }

    fn keep(&mut self, index: usize, candidate: &Candidate) {
        let position = self.indices.len();
        self.indices.push(index);
        self.by_md5.entry(candidate.md5.clone()).or_insert(position);
        if let Some(hash) = candidate.difference_hash {
            for slice in hash_slices(hash) {
                self.by_slice.entry(slice).or_default().push(position);
            }
        }
    }
}

/// At most this many faces are tried as the seed of the main person's group, spread evenly over
/// the roll: each is compared with every face, so the work grows linearly with the faces. The main
/// person holds a large share of a roll curated for them, so the seeds always include theirs.
const MAX_SEEDS: usize = 256;

/// The centre of the largest group of matching faces: of the seed faces, the one with the most
/// others within [`SAME_PERSON_PAIR`] (each photo's faces counted once), then the element-wise
/// median of its neighbours, refined once with every photo's nearest face. Some(None) when no
/// photo has a face; None when `keep_going` said stop.
fn main_centre(
    candidates: &[Candidate],
    keep_going: &dyn Fn() -> bool,
) -> Option<Option<Descriptor>> {
    // Every face of every photo that passed the checks (weak photos can still say who the person
    // is, but refused ones are often not even a face).
    let faces: Vec<(usize, &Descriptor)> = candidates
        .iter()
        .enumerate()
        .flat_map(|(index, candidate)| {
            candidate
                .faces
                .iter()
                .map(move |face| (index, &face.descriptor))
        })
        .collect();
    if faces.is_empty() {
        return Some(None);
    }
    let seeds = faces.len().min(MAX_SEEDS);
    let mut best = (0usize, 0usize);
    for seed in 0..seeds {
        if !keep_going() {
            return None;
        }
        let a = seed * faces.len() / seeds;
        let (photo_a, face_a) = faces[a];
        let mut neighbours = 0;
        let mut last_photo = usize::MAX;
        for &(photo_b, face_b) in &faces {
            if photo_b == photo_a || photo_b == last_photo {
                continue;
            }
            if face_a.distance(face_b) <= SAME_PERSON_PAIR {
                neighbours += 1;
                last_photo = photo_b; // faces of one photo are adjacent
            }
        }
        if neighbours > best.1 {
            best = (a, neighbours);
        }
    }
    let seed = faces[best.0].1;
    let group: Vec<&Descriptor> = faces
        .iter()
        .filter(|(_, face)| face.distance(seed) <= SAME_PERSON_PAIR)
        .map(|(_, face)| *face)
        .collect();
    let Some(centre) = Descriptor::median(&group) else {
        return Some(None);
    };
    // Refine: each photo's face nearest the centre, when close enough.
    let refined: Vec<&Descriptor> = candidates
        .iter()
        .filter_map(|candidate| {
            candidate
                .faces
                .iter()
                .map(|face| (face.descriptor.distance(&centre), &face.descriptor))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .filter(|(distance, _)| *distance <= DIFFERENT_PERSON_DISTANCE)
                .map(|(_, face)| face)
        })
        .collect();
    Some(Descriptor::median(&refined).or(Some(centre)))
}

/// How many picked photos fall in each pose, framing and light.
#[derive(Default)]
struct Counts {
    frontal: usize,
    left: usize,
    right: usize,
    profile: usize,
    framing: [usize; 3],
    lighting: [usize; 3],
}

impl Counts {
    /// Varied poses: mostly frontal, then both three-quarter sides, then profiles.
    fn novelty_pose(&self, pose: Pose, yaw: f32) -> f32 {
        let count = match pose {
            Pose::Frontal => self.frontal as f32 / 2.0,
            Pose::ThreeQuarter if yaw < 0.0 => self.left as f32,
            Pose::ThreeQuarter => self.right as f32,
            Pose::Profile => self.profile as f32 * 1.5,
        };
        1.0 / (1.0 + count)
    }

    fn novelty_framing(&self, framing: Framing) -> f32 {
        1.0 / (1.0 + self.framing[framing as usize] as f32)
    }

    fn novelty_lighting(&self, lighting: Lighting) -> f32 {
        1.0 / (1.0 + self.lighting[lighting as usize] as f32)
    }

    fn add(&mut self, pose: Pose, yaw: f32, framing: Framing, lighting: Lighting) {
        match pose {
            Pose::Frontal => self.frontal += 1,
            Pose::ThreeQuarter if yaw < 0.0 => self.left += 1,
            Pose::ThreeQuarter => self.right += 1,
            Pose::Profile => self.profile += 1,
        }
        self.framing[framing as usize] += 1;
        self.lighting[lighting as usize] += 1;
    }
}

fn words(choice: &Choice, count: usize) -> String {
    let describe = || {
        let pose = match choice.pose {
            Some(Pose::Frontal) => "frontal",
            Some(Pose::ThreeQuarter) => "three-quarter",
            Some(Pose::Profile) => "profile",
            None => "",
        };
        let framing = match choice.framing {
            Some(Framing::CloseUp) => "close-up",
            Some(Framing::Shoulders) => "head and shoulders",
            Some(Framing::HalfBody) => "half body",
            None => "",
        };
        let lighting = match choice.lighting {
            Some(Lighting::Low) => "low light",
            Some(Lighting::Even) => "even light",
            Some(Lighting::Bright) => "bright light",
            None => "",
        };
        [pose, framing, lighting]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if choice.picked {
        return format!("picked: {}", describe());
    }
    match choice.reasons.first() {
        Some(Code::DifferentPerson) => "someone else than the main person".into(),
        Some(Code::Duplicate) => "a copy of a photo already considered".into(),
        Some(Code::NearDuplicate) => "almost the same picture as a better photo".into(),
        Some(Code::LimitReached) => {
            format!(
                "not needed: {count} better or more varied photos were picked ({})",
                describe()
            )
        }
        Some(Code::NoFace) => "no face found".into(),
        Some(_) => "refused by the photo checks".into(),
        None => "no face could be identified".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DESCRIPTOR_LEN;

    fn descriptor(person: usize, variant: usize) -> Descriptor {
        let mut values = [0f32; DESCRIPTOR_LEN];
        values[person] = 1.0;
        values[64 + variant] = 0.2;
        Descriptor(values)
    }

    fn candidate(person: usize, variant: usize, pose: Pose, framing: Framing) -> Candidate {
        Candidate {
            reasons: Vec::new(),
            md5: format!("{person}-{variant}"),
            difference_hash: Some((variant as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            pixels: 12_000_000,
            quality: 0.7,
            brightness: 120.0,
            faces: vec![CandidateFace {
                descriptor: descriptor(person, variant),
                pose,
                yaw: if pose == Pose::Frontal { 0.0 } else { 0.6 },
                framing,
            }],
        }
    }

    #[test]
    fn the_largest_person_is_kept_and_others_dropped() {
        let mut candidates: Vec<Candidate> = (0..6)
            .map(|variant| candidate(0, variant, Pose::Frontal, Framing::CloseUp))
            .collect();
        candidates.push(candidate(1, 10, Pose::Frontal, Framing::CloseUp));
        candidates.push(candidate(2, 11, Pose::Frontal, Framing::CloseUp));
        let choices = curate(&candidates, 20, &[], &|| true).unwrap();
        for (index, choice) in choices.iter().enumerate() {
            assert_eq!(choice.picked, index < 6, "{index}: {choice:?}");
        }
        assert_eq!(choices[6].reasons, [Code::DifferentPerson]);
    }

    #[test]
    fn copies_and_the_limit_leave_the_best_and_most_varied() {
        let mut candidates: Vec<Candidate> = (0..5)
            .map(|variant| candidate(0, variant, Pose::Frontal, Framing::CloseUp))
            .collect();
        candidates.push(candidate(0, 5, Pose::Profile, Framing::HalfBody));
        let mut copy = candidates[0].clone();
        copy.pixels /= 4;
        candidates.push(copy);
        let choices = curate(&candidates, 3, &[], &|| true).unwrap();
        assert!(choices[5].picked, "the only profile is picked: {choices:?}");
        assert_eq!(choices[6].reasons, [Code::Duplicate]);
        assert_eq!(choices[6].copy_of, Some(0));
        assert_eq!(choices.iter().filter(|choice| choice.picked).count(), 3);
        assert!(
            choices
                .iter()
                .filter(|choice| !choice.picked && choice.copy_of.is_none())
                .all(|choice| choice.reasons == [Code::LimitReached])
        );
    }

    #[test]
    fn a_reference_set_names_the_person() {
        let candidates: Vec<Candidate> = (0..4)
            .map(|variant| candidate(1, variant, Pose::Frontal, Framing::CloseUp))
            .chain((4..6).map(|variant| candidate(0, variant, Pose::Frontal, Framing::CloseUp)))
            .collect();
        let reference = [descriptor(0, 20), descriptor(0, 21)];
        let choices = curate(&candidates, 20, &reference, &|| true).unwrap();
        let picked: Vec<bool> = choices.iter().map(|choice| choice.picked).collect();
        assert_eq!(picked, [false, false, false, false, true, true]);
    }

    #[test]
    fn a_roll_with_more_faces_than_seeds_still_finds_its_person_and_stops_when_told() {
        // 400 photos of one person among 300 of 30 others, interleaved: more faces than seeds.
        let candidates: Vec<Candidate> = (0..700)
            .map(|index| {
                let (person, variant) = if index % 7 < 4 {
                    (0, index % 60)
                } else {
                    (1 + index % 30, index % 60)
                };
                let mut candidate = candidate(person, variant, Pose::Frontal, Framing::CloseUp);
                candidate.md5 = format!("photo {index}");
                candidate.difference_hash =
                    Some((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                candidate
            })
            .collect();
        let choices = curate(&candidates, 20, &[], &|| true).unwrap();
        for (index, choice) in choices.iter().enumerate() {
            let main_person = index % 7 < 4;
            assert_eq!(
                choice.reasons.contains(&Code::DifferentPerson),
                !main_person,
                "{index}: {choice:?}"
            );
        }
        assert_eq!(choices.iter().filter(|choice| choice.picked).count(), 20);

        let asked = std::cell::Cell::new(0);
        let stop_soon = || {
            asked.set(asked.get() + 1);
            asked.get() < 10
        };
        assert!(curate(&candidates, 20, &[], &stop_soon).is_none());
        assert_eq!(asked.get(), 10, "it stopped at the first no");
    }
}
