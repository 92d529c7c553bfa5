//! The trainers behind each avatar type: their endpoint, how the guide's presets map to their
//! inputs, the ranges fal documents for overrides, what a run is expected to take and cost, and
//! how their output names the LoRA file.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Which trainer family an avatar uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainerKind {
    /// `fal-ai/flux-lora-portrait-trainer`: face-focused, auto-crop, masks.
    Portrait,
    /// `fal-ai/flux-lora-fast-training` with `is_style: true` (the guide's Flux Pro Trainer is
    /// deprecated by fal).
    Style,
}

impl TrainerKind {
    pub const ALL: [TrainerKind; 2] = [TrainerKind::Portrait, TrainerKind::Style];

    /// The id a creator names the trainer by (`--trainer`): the base model and the trainer.
    pub fn id(self) -> &'static str {
        match self {
            TrainerKind::Portrait => "flux1-portrait",
            TrainerKind::Style => "flux1-fast",
        }
    }

    pub fn from_id(id: &str) -> Option<TrainerKind> {
        TrainerKind::ALL.into_iter().find(|kind| kind.id() == id)
    }
}

/// The guide's presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    Fast,
    Balanced,
    Quality,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Fast, Preset::Balanced, Preset::Quality];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Balanced => "balanced",
            Self::Quality => "quality",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|preset| preset.as_str() == text)
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|preset| preset.as_str()).collect();
            format!("{text:?} is not one of: {}", names.join(", "))
        })
    }
}

/// Values a creator may set instead of the preset's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Overrides {
    pub steps: Option<u32>,
    pub learning_rate: Option<f64>,
}

/// The inputs that decide a run's length and result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainingParams {
    pub steps: u32,
    /// The style trainer takes no learning rate.
    pub learning_rate: Option<f64>,
}

/// What a run is expected to take and cost. The basis of the figures depends on the trainer's
/// kind only; front ends word it from the training type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub minutes: (u32, u32),
    pub cost_usd: f64,
}

/// One trainer: its endpoint id (configurable, so the next trainer change is a setting) and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainerSpec {
    pub kind: TrainerKind,
    pub endpoint: String,
}

pub const PORTRAIT_ENDPOINT: &str = "fal-ai/flux-lora-portrait-trainer";
pub const STYLE_ENDPOINT: &str = "fal-ai/flux-lora-fast-training";

/// Documented ranges (fal-protocol.md §4.1; the fast trainer documents none, so the portrait
/// trainer's step range is applied to both).
pub const STEP_RANGE: RangeInclusive<u32> = 1..=10_000;
pub const LEARNING_RATE_RANGE: RangeInclusive<f64> = 0.000_001..=0.001;

impl TrainerSpec {
    pub fn new(kind: TrainerKind, endpoint: Option<String>) -> Self {
        let default = match kind {
            TrainerKind::Portrait => PORTRAIT_ENDPOINT,
            TrainerKind::Style => STYLE_ENDPOINT,
        };
        Self {
            kind,
            endpoint: endpoint.unwrap_or_else(|| default.to_string()),
        }
    }

    /// The guide's preset values; style presets map the guide's iterations to steps.
    pub fn preset(&self, preset: Preset) -> TrainingParams {
        match (self.kind, preset) {
            (TrainerKind::Portrait, Preset::Fast) => portrait(500, 0.0003),
            (TrainerKind::Portrait, Preset::Balanced) => portrait(1000, 0.0002),
            (TrainerKind::Portrait, Preset::Quality) => portrait(2500, 0.0001),
            (TrainerKind::Style, Preset::Fast) => style(200),
            (TrainerKind::Style, Preset::Balanced) => style(500),
            (TrainerKind::Style, Preset::Quality) => style(1000),
        }
    }

    /// The preset with the creator's overrides, refused when outside fal's documented ranges.
    pub fn params(&self, preset: Preset, overrides: Overrides) -> Result<TrainingParams, String> {
        let mut params = self.preset(preset);
        if let Some(steps) = overrides.steps {
            if !STEP_RANGE.contains(&steps) {
                return Err(format!(
                    "steps must be between {} and {}, not {steps}",
                    STEP_RANGE.start(),
                    STEP_RANGE.end()
                ));
            }
            params.steps = steps;
        }
        if let Some(rate) = overrides.learning_rate {
            if self.kind == TrainerKind::Style {
                return Err("the style trainer has no learning rate setting".to_string());
            }
            if !LEARNING_RATE_RANGE.contains(&rate) {
                return Err(format!(
                    "the learning rate must be between {} and {}, not {rate}",
                    LEARNING_RATE_RANGE.start(),
                    LEARNING_RATE_RANGE.end()
                ));
            }
            params.learning_rate = Some(rate);
        }
        Ok(params)
    }

    /// The model input fal receives.
    pub fn input(&self, images_data_url: &str, trigger: &str, params: TrainingParams) -> Value {
        match self.kind {
            TrainerKind::Portrait => json!({
                "images_data_url": images_data_url,
                "trigger_phrase": trigger,
                "steps": params.steps,
                "learning_rate": params.learning_rate,
                "multiresolution_training": true,
                "subject_crop": true,
                "create_masks": true,
            }),
            TrainerKind::Style => json!({
                "images_data_url": images_data_url,
                "trigger_word": trigger,
                "steps": params.steps,
                "is_style": true,
                "create_masks": false,
            }),
        }
    }

    /// The guide's expected time for a preset, in minutes: the one table the preset cards and the
    /// estimates both show. fal documents no duration for either trainer (fal-protocol.md
    /// §4.1, §4.3), so these are the guide's own figures.
    pub fn preset_minutes(&self, preset: Preset) -> (u32, u32) {
        match (self.kind, preset) {
            (TrainerKind::Portrait, Preset::Fast) => (3, 5),
            (TrainerKind::Portrait, Preset::Balanced) => (5, 15),
            (TrainerKind::Portrait, Preset::Quality) => (15, 30),
            (TrainerKind::Style, Preset::Fast) => (5, 10),
            (TrainerKind::Style, Preset::Balanced) => (10, 20),
            (TrainerKind::Style, Preset::Quality) => (20, 45),
        }
    }

    /// Expected duration and cost. A preset's own step count takes the guide's time for it;
    /// other step counts scale the time of the preset nearest in steps. Prices are fal's
    /// published rates where known.
    pub fn estimate(&self, params: TrainingParams) -> Estimate {
        let cost_usd = match self.kind {
            // About $0.0024 per step with at least 1000 steps billed (a third-party figure fal
            // has not confirmed).
            TrainerKind::Portrait => 0.0024 * f64::from(params.steps.max(1000)),
            // fal's $2 per run of 1000 steps, scaling linearly with steps.
            TrainerKind::Style => 2.0 * f64::from(params.steps) / 1000.0,
        };
        let nearest = Preset::ALL
            .into_iter()
            .min_by_key(|preset| self.preset(*preset).steps.abs_diff(params.steps))
            .unwrap_or(Preset::Balanced);
        let (low, high) = self.preset_minutes(nearest);
        let scale = f64::from(params.steps) / f64::from(self.preset(nearest).steps);
        let scaled = |value: u32| ((f64::from(value) * scale).ceil() as u32).max(1);
        Estimate {
            minutes: (scaled(low), scaled(high)),
            cost_usd: (cost_usd * 100.0).round() / 100.0,
        }
    }
}

fn portrait(steps: u32, learning_rate: f64) -> TrainingParams {
    TrainingParams {
        steps,
        learning_rate: Some(learning_rate),
    }
}

fn style(steps: u32) -> TrainingParams {
    TrainingParams {
        steps,
        learning_rate: None,
    }
}

/// The files a finished training names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraOutput {
    pub lora_url: String,
    pub lora_size: Option<u64>,
    pub config_url: Option<String>,
}

impl LoraOutput {
    /// Reads `{"diffusers_lora_file": {url, file_size?}, "config_file": {url}?}`.
    pub fn from_result(result: &Value) -> Result<Self, String> {
        let file = &result["diffusers_lora_file"];
        let lora_url = file["url"]
            .as_str()
            .ok_or("the result names no diffusers_lora_file URL")?
            .to_string();
        Ok(Self {
            lora_url,
            lora_size: file["file_size"].as_u64(),
            config_url: result["config_file"]["url"].as_str().map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_the_guide() {
        let portrait = TrainerSpec::new(TrainerKind::Portrait, None);
        assert_eq!(portrait.endpoint, PORTRAIT_ENDPOINT);
        assert_eq!(portrait.preset(Preset::Fast), super::portrait(500, 0.0003));
        assert_eq!(portrait.preset(Preset::Quality).steps, 2500);
        let style = TrainerSpec::new(TrainerKind::Style, Some("me/other".into()));
        assert_eq!(style.endpoint, "me/other");
        assert_eq!(style.preset(Preset::Balanced), super::style(500));
        let input = style.input("https://x/set.zip", "TOK", style.preset(Preset::Fast));
        assert_eq!(input["is_style"], true);
        assert_eq!(input["steps"], 200);
        assert!(input.get("learning_rate").is_none());
    }

    #[test]
    fn overrides_outside_the_documented_ranges_are_refused() {
        let portrait = TrainerSpec::new(TrainerKind::Portrait, None);
        let steps = |steps| Overrides {
            steps: Some(steps),
            learning_rate: None,
        };
        assert_eq!(
            portrait
                .params(Preset::Fast, steps(3000))
                .expect("in range")
                .steps,
            3000
        );
        assert!(portrait.params(Preset::Fast, steps(0)).is_err());
        assert!(portrait.params(Preset::Fast, steps(10_001)).is_err());
        let rate = Overrides {
            steps: None,
            learning_rate: Some(0.01),
        };
        let error = portrait.params(Preset::Fast, rate).expect_err("too high");
        assert!(error.contains("learning rate"), "{error}");
        let style = TrainerSpec::new(TrainerKind::Style, None);
        let rate = Overrides {
            steps: None,
            learning_rate: Some(0.0001),
        };
        assert!(style.params(Preset::Fast, rate).is_err());
    }

    #[test]
    fn estimates_scale_with_steps() {
        let portrait = TrainerSpec::new(TrainerKind::Portrait, None);
        let quality = portrait.estimate(portrait.preset(Preset::Quality));
        assert_eq!(quality.minutes, (15, 30));
        assert_eq!(quality.cost_usd, 6.0);
        // At least 1000 steps are billed.
        assert_eq!(
            portrait.estimate(portrait.preset(Preset::Fast)).cost_usd,
            2.4
        );
        let style = TrainerSpec::new(TrainerKind::Style, None);
        let fast = style.estimate(style.preset(Preset::Fast));
        assert_eq!(fast.cost_usd, 0.4);
        // A preset's estimate is the time its card shows.
        for trainer in [&portrait, &style] {
            for preset in Preset::ALL {
                assert_eq!(
                    trainer.estimate(trainer.preset(preset)).minutes,
                    trainer.preset_minutes(preset),
                    "{trainer:?} {preset:?}"
                );
            }
        }
        // Other step counts scale the nearest preset's time.
        let doubled = portrait.estimate(TrainingParams {
            steps: 5000,
            learning_rate: Some(0.0001),
        });
        assert_eq!(doubled.minutes, (30, 60));
    }

    #[test]
    fn the_lora_file_is_read_from_the_result() {
        let result = json!({
            "diffusers_lora_file": {"url": "https://cdn/x.safetensors", "file_size": 89745224},
            "config_file": {"url": "https://cdn/config.json"},
        });
        let output = LoraOutput::from_result(&result).expect("output");
        assert_eq!(output.lora_size, Some(89_745_224));
        assert!(LoraOutput::from_result(&json!({"images": []})).is_err());
    }
}
