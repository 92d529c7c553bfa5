//! The native confirmation of a paid training or sample pack, and of a settings change that sends
//! data or money somewhere new. It is raised here, in Rust, after the window's own confirmation:
//! a script running in the webview can call `start_training`, `start_generation`,
//! `save_settings` or `set_secret`, but cannot answer this dialog, so nothing paid starts and
//! nothing is redirected without the creator's click.

use studio::{GenerationPlan, GuardedChange, TrainingPlan};

use crate::words::Words;

/// The dialog's words, from the app's one dictionary in the creator's language.
struct Question {
    title: String,
    question: String,
    start: String,
    cancel: String,
}

fn question(plan: &TrainingPlan, words: &Words) -> Question {
    let storage = match (plan.storage.as_str(), plan.storage_notice.as_deref()) {
        ("s3", _) => "confirmPaid.storage.s3",
        (_, Some("s3_not_public")) => "confirmPaid.storage.falNotPublic",
        _ => "confirmPaid.storage.fal",
    };
    // A price fal's pricing and its published table disagree on names both figures.
    let cost_label = match (plan.cost_usd_fal, plan.cost_usd_table) {
        (Some(fal), Some(table)) if plan.price_unverified => words.text(
            "confirmPaid.cost.unverified",
            &[
                ("fal", format!("{fal:.2}")),
                ("table", format!("{table:.2}")),
            ],
        ),
        _ => words.plain(cost_source(&plan.price_source)),
    };
    Question {
        title: words.plain("confirmPaid.title"),
        question: words.text(
            "confirmPaid.question",
            &[
                ("name", plan.avatar_name.clone()),
                ("photos", plan.photos.to_string()),
                ("steps", plan.steps.to_string()),
                ("minMinutes", plan.min_minutes.to_string()),
                ("maxMinutes", plan.max_minutes.to_string()),
                ("storage", words.plain(storage)),
                ("costLabel", cost_label),
                ("cost", format!("{:.2}", plan.cost_usd)),
            ],
        ),
        start: words.plain("confirmPaid.start"),
        cancel: words.plain("confirmPaid.cancel"),
    }
}

/// The pack dialog's words: the avatar, how many images from how many prompts, and the cost.
fn pack_question(plan: &GenerationPlan, words: &Words) -> Question {
    Question {
        title: words.plain("confirmPack.title"),
        question: words.text(
            "confirmPack.question",
            &[
                ("name", plan.avatar_name.clone()),
                ("images", plan.images.to_string()),
                ("prompts", plan.prompts.len().to_string()),
                ("costLabel", words.plain(cost_source(&plan.price_source))),
                ("cost", format!("{:.2}", plan.cost_usd)),
            ],
        ),
        start: words.plain("confirmPaid.start"),
        cancel: words.plain("confirmPaid.cancel"),
    }
}

/// The settings dialog's words: one line per guarded change, naming its host, account or key.
fn settings_question(changes: &[GuardedChange], words: &Words) -> Question {
    let amount = |budget: Option<f64>| {
        budget.map_or_else(
            || words.plain("confirmSettings.noLimit"),
            |usd| format!("${usd:.2}"),
        )
    };
    let line = |change: &GuardedChange| match change {
        GuardedChange::Budget { from, to } => words.text(
            "confirmSettings.budget",
            &[("from", amount(*from)), ("to", amount(*to))],
        ),
        GuardedChange::RelayAddress { host: Some(host) } => {
            words.text("confirmSettings.relayAddress", &[("host", host)])
        }
        GuardedChange::RelayAddress { host: None } => {
            words.plain("confirmSettings.relayAddressNone")
        }
        GuardedChange::StorageAddress {
            host: Some(host),
            bucket,
        } => words.text(
            "confirmSettings.storageAddress",
            &[
                ("host", host.as_str()),
                ("bucket", bucket.as_deref().unwrap_or_default()),
            ],
        ),
        GuardedChange::StorageAddress { host: None, .. }
        | GuardedChange::StorageAccount { host: None, .. } => {
            words.plain("confirmSettings.storageAddressNone")
        }
        GuardedChange::StorageAccount {
            host: Some(host),
            access_key,
        } => words.text(
            "confirmSettings.storageAccount",
            &[
                ("host", host.as_str()),
                ("accessKey", access_key.as_deref().unwrap_or_default()),
            ],
        ),
        GuardedChange::FalKey { key_id: Some(id) } => {
            words.text("confirmSettings.falKey", &[("keyId", id)])
        }
        GuardedChange::FalKey { key_id: None } => words.plain("confirmSettings.falKeyUnnamed"),
        GuardedChange::StorageSecret { host: Some(host) } => {
            words.text("confirmSettings.storageSecret", &[("host", host)])
        }
        GuardedChange::StorageSecret { host: None } => {
            words.plain("confirmSettings.storageSecretNoHost")
        }
        GuardedChange::RelayToken { host: Some(host) } => {
            words.text("confirmSettings.relayToken", &[("host", host)])
        }
        GuardedChange::RelayToken { host: None } => words.plain("confirmSettings.relayTokenNoHost"),
    };
    let lines: Vec<String> = changes.iter().map(line).collect();
    Question {
        title: words.plain("confirmSettings.title"),
        question: words.text("confirmSettings.question", &[("changes", lines.join("\n"))]),
        start: words.plain("confirmSettings.save"),
        cancel: words.plain("confirmPaid.cancel"),
    }
}

/// How a verified cost is labelled: at fal's price for the account, or estimated.
fn cost_source(price_source: &str) -> &'static str {
    if price_source == "fal" {
        "confirmPaid.cost.fal"
    } else {
        "confirmPaid.cost.static"
    }
}

/// The answer when the creator said no: `cancelled`, which the window does not show as an
/// error.
pub fn not_confirmed(what: &str) -> studio::ErrorReport {
    studio::ErrorReport {
        code: studio::ErrorCode::Cancelled,
        message: format!("the {what} was not confirmed"),
    }
}

/// Asks the creator, in a native dialog over `window`, to confirm exactly this training.
pub async fn paid_start_confirmed(
    window: &tauri::Window,
    plan: &TrainingPlan,
    words: &Words,
) -> bool {
    ask(window, question(plan, words)).await
}

/// Asks the creator, in a native dialog over `window`, to confirm exactly this pack.
pub async fn paid_pack_confirmed(
    window: &tauri::Window,
    plan: &GenerationPlan,
    words: &Words,
) -> bool {
    ask(window, pack_question(plan, words)).await
}

/// Asks the creator, in a native dialog over `window`, to confirm these settings changes.
pub async fn settings_change_confirmed(
    window: &tauri::Window,
    changes: &[GuardedChange],
    words: &Words,
) -> bool {
    ask(window, settings_question(changes, words)).await
}

async fn ask(window: &tauri::Window, asked: Question) -> bool {
    let answer = rfd::AsyncMessageDialog::new()
        .set_parent(window)
        .set_level(rfd::MessageLevel::Warning)
        .set_title(&asked.title)
        .set_description(&asked.question)
        .set_buttons(rfd::MessageButtons::OkCancelCustom(
            asked.start.clone(),
            asked.cancel.clone(),
        ))
        .show()
        .await;
    answer == rfd::MessageDialogResult::Custom(asked.start)
        || answer == rfd::MessageDialogResult::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(storage: &str, notice: Option<&str>, price_source: &str) -> TrainingPlan {
        TrainingPlan {
            avatar_id: studio::AvatarId::new(),
            avatar_name: "Anna".into(),
            training_type: studio::TrainingType::Portrait,
            preset: "fast".into(),
            trainer: "fal-ai/flux-lora-portrait-trainer".into(),
            steps: 500,
            learning_rate: Some(0.0003),
            min_minutes: 3,
            max_minutes: 5,
            cost_usd: 1.5,
            test_mode: false,
            photos: 12,
            storage: storage.into(),
            storage_notice: notice.map(str::to_string),
            price_source: price_source.into(),
            price_unverified: false,
            cost_usd_fal: None,
            cost_usd_table: None,
            spent_this_month_usd: 0.0,
            monthly_budget_usd: None,
        }
    }

    #[test]
    fn the_dialog_names_where_the_set_goes_and_where_the_price_comes_from() {
        let local = plan("fal", Some("s3_not_public"), "fal");
        let english = question(&local, &Words::for_language("en")).question;
        assert!(english.contains("not on the internet"), "{english}");
        assert!(english.contains("expires after a day"), "{english}");
        assert!(
            english.contains("Cost at fal's price for your account: $1.50"),
            "{english}"
        );
        let russian = question(&local, &Words::for_language("ru")).question;
        assert!(russian.contains("не в интернете"), "{russian}");
        assert!(russian.contains("по цене fal"), "{russian}");
        let s3 = question(&plan("s3", None, "static"), &Words::for_language("en")).question;
        assert!(
            s3.contains("your S3 storage") && s3.contains("Estimated cost: $1.50"),
            "{s3}"
        );
    }

    #[test]
    fn a_paid_pack_is_asked_about_with_its_images_and_cost_in_the_creators_language() {
        let pack = GenerationPlan {
            avatar_id: studio::AvatarId::new(),
            avatar_name: "Anna".into(),
            training_job_id: studio::JobId::new(),
            pack: "custom".into(),
            prompts: vec!["TOK, on a boat".into(), "TOK, at the beach".into()],
            images_per_prompt: 2,
            seed: 11,
            image_size: "square_hd".into(),
            endpoint: "fal-ai/flux-lora".into(),
            images: 4,
            cost_usd: 0.14,
            price_source: "fal".into(),
            test_mode: false,
        };
        let english = pack_question(&pack, &Words::for_language("en"));
        assert!(
            english.question.contains("4 images from 2 prompts")
                && english.question.contains("$0.14"),
            "{}",
            english.question
        );
        let russian = pack_question(&pack, &Words::for_language("ru"));
        assert!(
            russian.question.contains("4 изобр. по 2 запросам")
                && russian.question.contains("$0.14"),
            "{}",
            russian.question
        );
        assert_eq!(russian.title, "Сделать платный набор примеров?");
    }

    #[test]
    fn an_unverified_price_shows_both_figures_and_confirms_the_higher() {
        let unverified = TrainingPlan {
            cost_usd: 20.0,
            price_unverified: true,
            cost_usd_fal: Some(20.0),
            cost_usd_table: Some(2.4),
            ..plan("fal", None, "fal")
        };
        let english = question(&unverified, &Words::for_language("en")).question;
        assert!(
            english.contains("Price unverified: fal's pricing says $20.00, its published table $2.40. You confirm the higher: $20.00"),
            "{english}"
        );
        let russian = question(&unverified, &Words::for_language("ru")).question;
        assert!(russian.contains("Цена не подтверждена"), "{russian}");
        assert!(!russian.contains("Price"), "{russian}");
    }

    #[test]
    fn a_redirecting_change_names_its_host_account_or_key_in_the_creators_language() {
        let changes = [
            GuardedChange::Budget {
                from: Some(20.0),
                to: None,
            },
            GuardedChange::RelayAddress {
                host: Some("relay.example.org".into()),
            },
            GuardedChange::StorageAddress {
                host: Some("s3.example.net:9000".into()),
                bucket: Some("faces".into()),
            },
            GuardedChange::FalKey {
                key_id: Some("0f3a-key".into()),
            },
        ];
        let english = settings_question(&changes, &Words::for_language("en")).question;
        for expected in [
            "$20.00 → no limit",
            "relay.example.org",
            "“faces” at s3.example.net:9000",
            "fal key 0f3a-key",
        ] {
            assert!(english.contains(expected), "{expected}: {english}");
        }
        let russian = settings_question(&changes, &Words::for_language("ru")).question;
        assert!(russian.contains("без ограничения"), "{russian}");
        assert!(russian.contains("relay.example.org"), "{russian}");
        assert!(
            !russian.contains("confirmSettings"),
            "every key is worded: {russian}"
        );
    }
}
