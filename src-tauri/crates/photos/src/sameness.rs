//! Same person across a set of photos. Each photo is compared with the rest of the set, never
//! with a first photo, so the order does not matter: the set's main person is the largest group
//! of photos whose faces match each other, and each photo's face is measured against the
//! element-wise median of the *other* photos of that group (leave one out). A photo whose face
//! is far from that centre is of a different person. In a group photo the subject is the face
//! closest to the centre.

use serde::Serialize;

use crate::identity::Descriptor;

/// Why a photo was called a different person, for a reason's words: how far its face is from
/// the centre of the set's other photos of the main person, and how many they are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sameness {
    pub distance: f32,
    pub others: usize,
}

/// Distance from the centre of the other photos above which a face is another person.
/// Measured on the labelled fixtures (tests/fixtures/identity/README.md).
pub const DIFFERENT_PERSON_DISTANCE: f32 = 0.55;

/// Two faces closer than this are taken as the same person when the set's main person is
/// looked for (a pair spreads more than a face from a centre does).
pub const SAME_PERSON_PAIR: f32 = 0.6;

/// Fewest photos with faces before the set can say who its person is.
pub const MIN_SET: usize = 3;

/// The judgement on one photo of a set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhotoJudgement {
    /// Which of the photo's faces is the subject; `None` when it has none.
    pub subject: Option<usize>,
    /// The subject's distance from the centre of the other photos of the main person; `None`
    /// while the set is too small to tell (or has no main person yet).
    pub distance: Option<f32>,
    /// How many other photos the centre was made from.
    pub others: usize,
    /// The subject is someone else than the set's main person.
    pub different_person: bool,
    /// The photo belongs to the main person's group (what curation keeps).
    pub main_person: bool,
}

impl PhotoJudgement {
    fn undecided(faces: usize) -> Self {
        Self {
            subject: (faces > 0).then_some(0),
            distance: None,
            others: 0,
            different_person: false,
            main_person: faces > 0,
        }
    }
}

/// Judges a set: `photos[i]` holds the descriptors of photo i's candidate faces, most likely
/// subject first (the strongest detection). With fewer than [`MIN_SET`] photos with faces,
/// nothing is decided: each photo's subject is its first face and none is refused.
pub fn judge_set(photos: &[Vec<Descriptor>]) -> Vec<PhotoJudgement> {
    judge_set_with(photos, DIFFERENT_PERSON_DISTANCE)
}

/// [`judge_set`] with another refusal distance (for measuring).
pub fn judge_set_with(photos: &[Vec<Descriptor>], threshold: f32) -> Vec<PhotoJudgement> {
    let with_faces: Vec<usize> = (0..photos.len())
        .filter(|&index| !photos[index].is_empty())
        .collect();
    let mut judgements: Vec<PhotoJudgement> = photos
        .iter()
        .map(|faces| PhotoJudgement::undecided(faces.len()))
        .collect();
    if with_faces.len() < MIN_SET {
        return judgements;
    }

    // First guess at each photo's subject: the face whose nearest match in the other photos is,
    // over those photos, the closest (the median of the nearest distances).
    let mut subjects: Vec<usize> = photos
        .iter()
        .enumerate()
        .map(|(index, faces)| {
            if faces.len() < 2 {
                return 0;
            }
            let score = |face: &Descriptor| {
                let mut nearest: Vec<f32> = with_faces
                    .iter()
                    .filter(|&&other| other != index)
                    .map(|&other| {
                        photos[other]
                            .iter()
                            .map(|candidate| face.distance(candidate))
                            .fold(f32::INFINITY, f32::min)
                    })
                    .collect();
                median(&mut nearest)
            };
            argmin(faces.iter().map(score))
        })
        .collect();

    // Twice: find the main person from the subjects, then pick in each photo the face closest
    // to the centre of the main person's other photos.
    let mut main = Vec::new();
    for _ in 0..2 {
        main = main_group(&with_faces, |a, b| {
            photos[a][subjects[a]].distance(&photos[b][subjects[b]])
        });
        if main.len() < 2 {
            // Nobody matches anybody: no main person to measure against.
            return judgements;
        }
        for &index in &with_faces {
            if let Some(centre) = centre_without(photos, &subjects, &main, index) {
                subjects[index] = argmin(photos[index].iter().map(|face| face.distance(&centre)));
            }
        }
    }

    for &index in &with_faces {
        let others = main.iter().filter(|&&other| other != index).count();
        let centre = centre_without(photos, &subjects, &main, index);
        let distance = centre.map(|centre| photos[index][subjects[index]].distance(&centre));
        judgements[index] = PhotoJudgement {
            subject: Some(subjects[index]),
            distance,
            others,
            different_person: distance.is_some_and(|distance| distance > threshold),
            main_person: distance.is_some_and(|distance| distance <= threshold),
        };
    }
    judgements
}

/// The element-wise median of the subjects of the main group's photos other than `left_out`.
fn centre_without(
    photos: &[Vec<Descriptor>],
    subjects: &[usize],
    main: &[usize],
    left_out: usize,
) -> Option<Descriptor> {
    let others: Vec<&Descriptor> = main
        .iter()
        .filter(|&&other| other != left_out)
        .map(|&other| &photos[other][subjects[other]])
        .collect();
    Descriptor::median(&others)
}

/// The largest group of photos linked by faces closer than [`SAME_PERSON_PAIR`], each linked
/// to at least half of the group's others (so two people are not chained together through one
/// ambiguous face). Ties go to the tighter group.
fn main_group(photos: &[usize], distance: impl Fn(usize, usize) -> f32) -> Vec<usize> {
    let count = photos.len();
    let mut matrix = vec![0f32; count * count];
    for a in 0..count {
        for b in a + 1..count {
            let d = distance(photos[a], photos[b]);
            matrix[a * count + b] = d;
            matrix[b * count + a] = d;
        }
    }
    let linked = |a: usize, b: usize| matrix[a * count + b] <= SAME_PERSON_PAIR;
    // Seeds: each photo with its linked neighbours; pruned until every member is linked to at
    // least half of the others.
    let mut best: Vec<usize> = Vec::new();
    let mut best_spread = f32::INFINITY;
    for seed in 0..count {
        let mut group: Vec<usize> = (0..count)
            .filter(|&other| other == seed || linked(seed, other))
            .collect();
        loop {
            let weakest = group
                .iter()
                .map(|&member| {
                    let links = group
                        .iter()
                        .filter(|&&other| other != member && linked(member, other))
                        .count();
                    (links, member)
                })
                .min();
            match weakest {
                Some((links, member)) if group.len() > 2 && links * 2 < group.len() - 1 => {
                    group.retain(|&other| other != member);
                }
                _ => break,
            }
        }
        if group.len() < 2 {
            continue;
        }
        let mut pairs = 0;
        let mut total = 0.0;
        for (position, &a) in group.iter().enumerate() {
            for &b in &group[position + 1..] {
                total += matrix[a * count + b];
                pairs += 1;
            }
        }
        let spread = total / pairs.max(1) as f32;
        if group.len() > best.len() || group.len() == best.len() && spread < best_spread {
            best = group;
            best_spread = spread;
        }
    }
    best.into_iter().map(|member| photos[member]).collect()
}

fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return f32::INFINITY;
    }
    values.sort_by(f32::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn argmin(values: impl Iterator<Item = f32>) -> usize {
    values
        .enumerate()
        .fold((0, f32::INFINITY), |best, (index, value)| {
            if value < best.1 { (index, value) } else { best }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DESCRIPTOR_LEN;

    /// A descriptor `offset` away from person `person`'s point, in a direction of its own.
    fn face(person: usize, variant: usize) -> Descriptor {
        let mut values = [0f32; DESCRIPTOR_LEN];
        values[person] = 1.0; // people are 1.41 apart
        values[64 + variant] = 0.2; // photos of one person 0.28 apart
        Descriptor(values)
    }

    #[test]
    fn under_three_photos_nothing_is_decided() {
        let judged = judge_set(&[vec![face(0, 0)], vec![face(1, 0)]]);
        assert!(judged.iter().all(|photo| !photo.different_person));
        assert!(judged.iter().all(|photo| photo.distance.is_none()));
    }

    #[test]
    fn the_odd_photo_is_refused_wherever_it_is() {
        for position in 0..5 {
            let mut set: Vec<Vec<Descriptor>> = (0..4).map(|v| vec![face(0, v)]).collect();
            set.insert(position, vec![face(1, 9)]);
            let judged = judge_set(&set);
            for (index, photo) in judged.iter().enumerate() {
                assert_eq!(photo.different_person, index == position, "{judged:?}");
            }
            assert_eq!(judged[position].others, 4);
        }
    }

    #[test]
    fn three_photos_with_one_stranger() {
        let judged = judge_set(&[vec![face(1, 0)], vec![face(0, 1)], vec![face(0, 2)]]);
        let refused: Vec<bool> = judged.iter().map(|photo| photo.different_person).collect();
        assert_eq!(refused, [true, false, false]);
    }

    #[test]
    fn in_a_group_photo_the_subject_is_the_face_that_matches() {
        let set = vec![
            vec![face(0, 0)],
            vec![face(2, 0), face(3, 0), face(0, 1), face(4, 0)],
            vec![face(0, 2)],
            vec![face(0, 3)],
        ];
        let judged = judge_set(&set);
        assert_eq!(judged[1].subject, Some(2));
        assert!(judged.iter().all(|photo| !photo.different_person));
    }

    #[test]
    fn photos_without_faces_are_left_alone() {
        let set = vec![vec![face(0, 0)], vec![], vec![face(0, 1)], vec![face(0, 2)]];
        let judged = judge_set(&set);
        assert_eq!(judged[1].subject, None);
        assert!(!judged[1].different_person);
        assert_eq!(judged[0].others, 2);
    }
}
