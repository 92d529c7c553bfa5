//! What a portrait set covers: head poses, framings and light, counted over its photos, and what
//! is missing for a trainer to learn the person from every side. Read from what the checks
//! already stored (faces and quality), so no photo is decoded again.

use serde::Serialize;
use ts_rs::TS;

use crate::curate::{Framing, Lighting};
use crate::identity::{Pose, pose};
use crate::{Face, Quality};

/// Advice waits for this many photos: two close-ups say nothing yet about a set.
pub const MIN_PHOTOS_FOR_ADVICE: u32 = 3;

/// How one photo shows its person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, TS)]
pub struct Look {
    /// `None` when the photo has no face.
    pub pose: Option<Pose>,
    pub framing: Option<Framing>,
    /// `None` when the photo's light was not measured.
    pub lighting: Option<Lighting>,
}

impl Look {
    /// The look of a photo whose main face is the first of `faces`, `height` pixels tall (upright).
    pub fn of(faces: &[Face], height: u32, quality: Option<&Quality>) -> Self {
        let main = faces.first();
        Self {
            pose: main.map(pose),
            framing: main.map(|face| Framing::of(face.height, height as f32)),
            lighting: quality.map(|quality| Lighting::of(quality.brightness)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, TS)]
pub struct PoseCounts {
    pub frontal: u32,
    pub three_quarter: u32,
    pub profile: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, TS)]
pub struct FramingCounts {
    pub close_up: u32,
    pub shoulders: u32,
    pub half_body: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, TS)]
pub struct LightingCounts {
    pub low: u32,
    pub even: u32,
    pub bright: u32,
}

/// Something a set lacks, as a code with its parameter; the UI and the CLI word it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum CoverageGap {
    /// No head turned to the side.
    NoProfile,
    /// No head turned part way.
    NoThreeQuarter,
    /// Every photo is framed the same way.
    OneFraming { framing: Framing },
    /// Every photo has the same light.
    OneLight { lighting: Lighting },
}

/// What a portrait set covers and lacks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, TS)]
pub struct Coverage {
    /// Photos with a face, the ones counted.
    pub photos: u32,
    pub poses: PoseCounts,
    pub framings: FramingCounts,
    pub lightings: LightingCounts,
    /// Empty until the set has [`MIN_PHOTOS_FOR_ADVICE`] photos with a face.
    pub missing: Vec<CoverageGap>,
}

impl Coverage {
    pub fn of(looks: &[Look]) -> Self {
        let mut coverage = Self::default();
        for look in looks {
            let (Some(pose), Some(framing)) = (look.pose, look.framing) else {
                continue;
            };
            coverage.photos += 1;
            *match pose {
                Pose::Frontal => &mut coverage.poses.frontal,
                Pose::ThreeQuarter => &mut coverage.poses.three_quarter,
                Pose::Profile => &mut coverage.poses.profile,
            } += 1;
            *match framing {
                Framing::CloseUp => &mut coverage.framings.close_up,
                Framing::Shoulders => &mut coverage.framings.shoulders,
                Framing::HalfBody => &mut coverage.framings.half_body,
            } += 1;
            if let Some(lighting) = look.lighting {
                *match lighting {
                    Lighting::Low => &mut coverage.lightings.low,
                    Lighting::Even => &mut coverage.lightings.even,
                    Lighting::Bright => &mut coverage.lightings.bright,
                } += 1;
            }
        }
        if coverage.photos >= MIN_PHOTOS_FOR_ADVICE {
            coverage.missing = coverage.gaps();
        }
        coverage
    }

    fn gaps(&self) -> Vec<CoverageGap> {
        let mut gaps = Vec::new();
        if self.poses.profile == 0 {
            gaps.push(CoverageGap::NoProfile);
        }
        if self.poses.three_quarter == 0 {
            gaps.push(CoverageGap::NoThreeQuarter);
        }
        let framings = [
            (Framing::CloseUp, self.framings.close_up),
            (Framing::Shoulders, self.framings.shoulders),
            (Framing::HalfBody, self.framings.half_body),
        ];
        if let Some((framing, _)) = framings.iter().find(|(_, count)| *count == self.photos) {
            gaps.push(CoverageGap::OneFraming { framing: *framing });
        }
        let lit = self.lightings.low + self.lightings.even + self.lightings.bright;
        let lightings = [
            (Lighting::Low, self.lightings.low),
            (Lighting::Even, self.lightings.even),
            (Lighting::Bright, self.lightings.bright),
        ];
        if lit >= MIN_PHOTOS_FOR_ADVICE
            && let Some((lighting, _)) = lightings.iter().find(|(_, count)| *count == lit)
        {
            gaps.push(CoverageGap::OneLight {
                lighting: *lighting,
            });
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(pose: Pose, framing: Framing, lighting: Lighting) -> Look {
        Look {
            pose: Some(pose),
            framing: Some(framing),
            lighting: Some(lighting),
        }
    }

    #[test]
    fn a_set_of_frontal_close_ups_in_one_light_is_told_what_it_lacks() {
        let same = look(Pose::Frontal, Framing::CloseUp, Lighting::Even);
        let coverage = Coverage::of(&[same, same, same, Look::default()]);
        assert_eq!(coverage.photos, 3, "the photo with no face is not counted");
        assert_eq!(coverage.poses.frontal, 3);
        assert_eq!(
            coverage.missing,
            [
                CoverageGap::NoProfile,
                CoverageGap::NoThreeQuarter,
                CoverageGap::OneFraming {
                    framing: Framing::CloseUp
                },
                CoverageGap::OneLight {
                    lighting: Lighting::Even
                },
            ]
        );
    }

    #[test]
    fn a_varied_set_lacks_nothing_and_a_small_one_gets_no_advice_yet() {
        let varied = [
            look(Pose::Frontal, Framing::CloseUp, Lighting::Even),
            look(Pose::ThreeQuarter, Framing::Shoulders, Lighting::Bright),
            look(Pose::Profile, Framing::HalfBody, Lighting::Low),
        ];
        assert_eq!(Coverage::of(&varied).missing, []);
        let same = look(Pose::Frontal, Framing::CloseUp, Lighting::Even);
        let small = Coverage::of(&[same, same]);
        assert_eq!((small.photos, small.missing.len()), (2, 0));
    }
}
