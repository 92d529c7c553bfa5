//! The CLI's English for the codes the core sends. The app words the same codes in the UI's
//! dictionary (`ui/src/lib/i18n`), in the creator's language.

use studio::{ConnectionProblem, JobFailure, JobStep, PhotoCode, PhotoResult, Transfer};

/// A job's step as a status line.
pub fn step(step: &JobStep, test_mode: bool) -> String {
    let text = match step {
        JobStep::Preparing => "Preparing the training set".to_string(),
        JobStep::Packing { photos } => format!("Packing {photos} photos"),
        JobStep::Uploading { megabytes, store } => format!(
            "Uploading the training set ({megabytes:.1} MB) to {}",
            if store == "s3" { "S3" } else { "fal storage" }
        ),
        JobStep::Uploaded => "Training set uploaded".to_string(),
        JobStep::Sending => "Sending the training to fal".to_string(),
        JobStep::Queued { place: Some(place) } => {
            format!("Waiting in fal's queue (position {place})")
        }
        JobStep::Queued { place: None } => "Waiting in fal's queue".to_string(),
        JobStep::Training {
            done: Some(done),
            total: Some(total),
        } => format!("Training: step {done} of {total}"),
        JobStep::Training { .. } => "Training".to_string(),
        JobStep::Downloading { after_cancel: true } => {
            "Training finished before the cancel took effect; downloading the model".to_string()
        }
        JobStep::Downloading { after_cancel: false } => {
            "Training finished; downloading the model".to_string()
        }
        JobStep::Retrying { transfer, detail } => {
            format!("{} failed ({detail}); trying again", doing(*transfer))
        }
        JobStep::Unreachable { detail } => format!("Cannot reach fal ({detail}); still trying"),
        JobStep::NotSent { detail } => format!("Not sent yet: {detail}"),
        JobStep::AwaitingHistory => "fal's answer was lost; waiting for fal's request history to show whether the training arrived".to_string(),
        JobStep::Adopted => "fal had received the training; following it".to_string(),
        JobStep::Completed => "Model saved".to_string(),
        JobStep::Cancelled => "Cancelled".to_string(),
        JobStep::Failed => "Failed".to_string(),
    };
    if test_mode {
        format!("{text} (test mode)")
    } else {
        text
    }
}

/// Why a job failed, in a sentence.
pub fn failure(failure: &JobFailure) -> String {
    match failure {
        JobFailure::Settings { detail } => detail.clone(),
        JobFailure::Refused { detail } => {
            format!("fal refused the training before it ran, so nothing was billed: {detail}")
        }
        JobFailure::FalFailed {
            kind: Some(kind),
            detail,
        } => format!("fal reported a failure ({kind}): {detail}"),
        JobFailure::FalFailed { kind: None, detail } => {
            format!("fal reported a failure: {detail}")
        }
        JobFailure::NoRequest => "the job has no fal request to follow".to_string(),
        JobFailure::Forgotten => "fal no longer knows this request".to_string(),
        JobFailure::ResultExpired => "The training finished, but fal no longer keeps its result (results expire soon after a run ends), so the model cannot be fetched.".to_string(),
        JobFailure::ResultUnusable { detail } => format!("fal's result cannot be used: {detail}"),
        JobFailure::ModelNotHttps { url } => format!(
            "fal's result names the model at {url:?}, which is not one of fal's https addresses; it was not downloaded."
        ),
        JobFailure::ModelGone => "The model file is no longer on fal's servers; it can no longer be downloaded.".to_string(),
        JobFailure::ModelPrivate { status } => format!(
            "fal's file server refused the model's download (HTTP {status}); the file may be private to the account."
        ),
        JobFailure::TransferGaveUp {
            transfer,
            tries,
            detail,
        } => format!("{} after {tries} tries: {detail}", gave_up(*transfer)),
        JobFailure::NeverReceived { minutes } => format!(
            "fal never received this training: its request history lists no such request {minutes} minutes after it was sent, so nothing was charged. Start the training again when you are ready."
        ),
        JobFailure::Unsettled { detail, sent_at } => format!(
            "fal's answer to this request was lost, and fal's request history could not tell whether it arrived ({detail}). Check your requests on fal's dashboard{} before starting again; nothing was sent twice.",
            sent_at
                .map(|sent_at| format!(" for the one sent at {}", sent_at.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default()
        ),
        JobFailure::ImageUnavailable { status } => format!(
            "An image could not be downloaded from fal's file server (HTTP {status}): it is missing from the gallery; the other images were kept."
        ),
        JobFailure::Other { detail } => detail.clone(),
    }
}

fn doing(transfer: Transfer) -> &'static str {
    match transfer {
        Transfer::Upload => "Uploading the training set",
        Transfer::Download => "Downloading the model",
    }
}

fn gave_up(transfer: Transfer) -> &'static str {
    match transfer {
        Transfer::Upload => "The training set could not be uploaded",
        Transfer::Download => "The model could not be downloaded",
    }
}

/// How a photo shows its person, e.g. "frontal, close-up, even light".
pub fn look(look: &studio::Look) -> String {
    let mut parts = Vec::new();
    if let Some(pose) = look.pose {
        parts.push(pose_word(pose));
    }
    if let Some(framing) = look.framing {
        parts.push(framing_word(framing));
    }
    if let Some(lighting) = look.lighting {
        parts.push(lighting_word(lighting));
    }
    parts.join(", ")
}

fn pose_word(pose: studio::Pose) -> &'static str {
    match pose {
        studio::Pose::Frontal => "frontal",
        studio::Pose::ThreeQuarter => "three-quarter",
        studio::Pose::Profile => "profile",
    }
}

fn framing_word(framing: studio::Framing) -> &'static str {
    match framing {
        studio::Framing::CloseUp => "close-up",
        studio::Framing::Shoulders => "head and shoulders",
        studio::Framing::HalfBody => "half body",
    }
}

fn lighting_word(lighting: studio::Lighting) -> &'static str {
    match lighting {
        studio::Lighting::Low => "low light",
        studio::Lighting::Even => "even light",
        studio::Lighting::Bright => "bright light",
    }
}

/// What a set lacks, as advice.
pub fn gap(gap: &studio::CoverageGap) -> String {
    match gap {
        studio::CoverageGap::NoProfile => {
            "no profile views: add a photo or two of the head turned to the side".into()
        }
        studio::CoverageGap::NoThreeQuarter => {
            "no three-quarter views: add photos with the head turned part way".into()
        }
        studio::CoverageGap::OneFraming { framing } => {
            let framing = match framing {
                studio::Framing::CloseUp => "close-ups",
                studio::Framing::Shoulders => "head and shoulders",
                studio::Framing::HalfBody => "half-body shots",
            };
            format!("all photos are {framing}: add some framed closer or further away")
        }
        studio::CoverageGap::OneLight { lighting } => format!(
            "the same light in every photo ({}): add photos taken in other light",
            lighting_word(*lighting)
        ),
    }
}

/// A set's coverage in a few lines.
pub fn coverage(coverage: &studio::Coverage) -> String {
    let mut lines = vec![
        format!(
            "{} photos with a face: {} frontal, {} three-quarter, {} profile",
            coverage.photos,
            coverage.poses.frontal,
            coverage.poses.three_quarter,
            coverage.poses.profile
        ),
        format!(
            "framing: {} close-up, {} head and shoulders, {} half body",
            coverage.framings.close_up, coverage.framings.shoulders, coverage.framings.half_body
        ),
        format!(
            "light: {} low, {} even, {} bright",
            coverage.lightings.low, coverage.lightings.even, coverage.lightings.bright
        ),
    ];
    if coverage.photos < studio::MIN_PHOTOS_FOR_ADVICE {
        lines.push(format!(
            "advice comes once {} photos have a face",
            studio::MIN_PHOTOS_FOR_ADVICE
        ));
    } else if coverage.missing.is_empty() {
        lines.push("nothing obvious is missing".into());
    }
    lines.extend(
        coverage
            .missing
            .iter()
            .map(|missing| format!("- {}", gap(missing))),
    );
    lines.join("\n")
}

/// A photo's verdict: why it was refused, or what an accepted one replaced.
pub fn verdict(result: &PhotoResult) -> String {
    if result.reasons.is_empty() {
        return match &result.replaces_name {
            Some(name) => format!("accepted in place of {name}, a worse copy of the same picture"),
            None => "accepted".into(),
        };
    }
    reasons(
        &result.reasons,
        result.sameness.map(|sameness| sameness.others),
    )
}

/// Refusal reasons; `others`: how many photos a different person was compared with.
pub fn reasons(codes: &[PhotoCode], others: Option<usize>) -> String {
    if codes.is_empty() {
        return "accepted".into();
    }
    let words: Vec<String> = codes
        .iter()
        .map(|code| match code {
            PhotoCode::DifferentPerson => match others {
                Some(others) => {
                    format!("this looks like a different person than the other {others} photos")
                }
                None => "this looks like a different person than the other photos".into(),
            },
            other => reason(*other).into(),
        })
        .collect();
    words.join("; ")
}

fn reason(code: PhotoCode) -> &'static str {
    match code {
        PhotoCode::UnsupportedFormat => "this file type cannot be used: export the photo as JPEG",
        PhotoCode::Corrupt => "the file is damaged or incomplete",
        PhotoCode::FileTooLarge => "the file is larger than the photo size limit",
        PhotoCode::ResolutionTooLow => {
            "the photo is too small: use one at least 512 pixels on its short side"
        }
        PhotoCode::DimensionsTooLarge => "the image is too large to open safely",
        PhotoCode::NoFace => {
            "no face was found: use a photo where the face fills at least a tenth of the frame"
        }
        PhotoCode::MultipleFaces => "there is more than one person: use photos of one person only",
        PhotoCode::FaceTooSmall => "the face is too small: move closer or crop the photo",
        PhotoCode::Blurry => "the photo is blurry",
        PhotoCode::TooDark => "the photo is too dark",
        PhotoCode::TooBright => "the photo is overexposed",
        PhotoCode::LowContrast => "the photo is flat, with little contrast or detail",
        PhotoCode::Duplicate => "this exact photo is already in the set",
        PhotoCode::NearDuplicate => "an almost identical photo is already in the set",
        PhotoCode::LimitReached => "the avatar already has as many photos as it can hold",
        PhotoCode::CheckStopped => {
            "checking this file stopped the app before, so it is passed over; import it by hand to try again"
        }
        PhotoCode::Unreadable => "the file or folder could not be read",
        PhotoCode::ExtensionMismatch => "the file's name does not match its type",
        PhotoCode::Noisy => "the photo is grainy",
        PhotoCode::BackgroundFaces => "there are other faces in the background",
        PhotoCode::DifferentPerson => "this looks like a different person than the other photos",
    }
}

/// What to do about a relay problem.
pub fn connection_problem(problem: ConnectionProblem) -> &'static str {
    match problem {
        ConnectionProblem::NotConfigured => {
            "no relay is set up: set RELAY_URL and RELAY_TOKEN; without a relay the app polls fal directly, which works too"
        }
        ConnectionProblem::Unreachable => {
            "the relay URL cannot be reached: check the address, the internet connection, and that the relay's host is up"
        }
        ConnectionProblem::NotRunning => {
            "the host answers but the relay is not running: start avatar-relay (systemctl start avatar-relay)"
        }
        ConnectionProblem::NotARelay => {
            "something answered that is not a working relay: check the address and the reverse proxy in front of it"
        }
        ConnectionProblem::TokenWrong => {
            "the relay refused the token: use the token the relay was started with (RELAY_TOKEN)"
        }
        ConnectionProblem::FeedSilent => {
            "the relay took a test event but did not hand it back: restart it and read its log"
        }
        ConnectionProblem::WebhookUrlMissing => {
            "fal is not told where to send webhooks: set FAL_WEBHOOK_URL to the relay's address"
        }
        ConnectionProblem::WebhookUrlElsewhere => {
            "FAL_WEBHOOK_URL points at a different server than this relay"
        }
    }
}

/// What an estimated cost rests on, by trainer.
pub fn price_basis(training_type: studio::TrainingType) -> &'static str {
    match training_type {
        studio::TrainingType::Portrait => {
            "portrait: about $0.0024 per step with at least 1000 steps billed (third-party figure, not confirmed by fal); times are the guide's"
        }
        studio::TrainingType::Style => {
            "style: fal's $2 per run of 1000 steps, scaling linearly with steps; times are the guide's"
        }
    }
}
