//! The native confirmation of a paid training. It is raised here, in Rust, after the window's own
//! confirmation: a script running in the webview can call `start_training`, but cannot answer
//! this dialog, so no paid run starts without the creator's click.

use studio::TrainingPlan;

/// The dialog's words in the creator's language: the one chosen in Settings, else the system's.
struct Words {
    title: &'static str,
    question: String,
    start: &'static str,
    cancel: &'static str,
}

fn words(plan: &TrainingPlan, language: Option<&str>) -> Words {
    let local_s3 = plan.storage_notice.as_deref() == Some("s3_not_public");
    let storage_ru = match (plan.storage.as_str(), local_s3) {
        ("s3", _) => "ваше хранилище S3",
        (_, true) => {
            "хранилище fal (fal не может скачать его из вашего S3: тот не в интернете), где он удалится через сутки"
        }
        _ => "хранилище fal, где он удалится через сутки",
    };
    let storage_en = match (plan.storage.as_str(), local_s3) {
        ("s3", _) => "your S3 storage",
        (_, true) => {
            "fal storage (fal cannot fetch it from your S3, which is not on the internet), where it expires after a day"
        }
        _ => "fal storage, where it expires after a day",
    };
    let fal_price = plan.price_source == "fal";
    let cost_ru = if fal_price {
        "Стоимость по цене fal для вашего аккаунта"
    } else {
        "Примерная стоимость"
    };
    let cost_en = if fal_price {
        "Cost at fal's price for your account"
    } else {
        "Estimated cost"
    };
    if is_russian(language) {
        Words {
            title: "Начать платное обучение?",
            question: format!(
                "Аватар «{}»: {} фото, {} шагов, {}–{} мин.\nНабор фото будет загружен в {storage_ru} и отправлен на fal.ai.\n{cost_ru}: ${:.2} — её спишут с вашего счёта fal.",
                plan.avatar_name,
                plan.photos,
                plan.steps,
                plan.min_minutes,
                plan.max_minutes,
                plan.cost_usd
            ),
            start: "Начать и оплатить",
            cancel: "Отмена",
        }
    } else {
        Words {
            title: "Start a paid training?",
            question: format!(
                "Avatar \"{}\": {} photos, {} steps, {}–{} min.\nThe photo set is uploaded to {storage_en} and sent to fal.ai.\n{cost_en}: ${:.2}, charged to your fal account.",
                plan.avatar_name,
                plan.photos,
                plan.steps,
                plan.min_minutes,
                plan.max_minutes,
                plan.cost_usd
            ),
            start: "Start and pay",
            cancel: "Cancel",
        }
    }
}

fn is_russian(language: Option<&str>) -> bool {
    let system = || {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .into_iter()
            .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    };
    language
        .map(str::to_owned)
        .or_else(system)
        .is_some_and(|language| language.starts_with("ru"))
}

/// Asks the creator, in a native dialog over `window`, to confirm exactly this plan.
pub async fn paid_start_confirmed(
    window: &tauri::Window,
    plan: &TrainingPlan,
    language: Option<&str>,
) -> bool {
    let words = words(plan, language);
    let answer = rfd::AsyncMessageDialog::new()
        .set_parent(window)
        .set_level(rfd::MessageLevel::Warning)
        .set_title(words.title)
        .set_description(words.question)
        .set_buttons(rfd::MessageButtons::OkCancelCustom(
            words.start.to_owned(),
            words.cancel.to_owned(),
        ))
        .show()
        .await;
    answer == rfd::MessageDialogResult::Custom(words.start.to_owned())
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
            assumptions: String::new(),
            test_mode: false,
            photos: 12,
            storage: storage.into(),
            storage_notice: notice.map(str::to_string),
            price_source: price_source.into(),
            spent_this_month_usd: 0.0,
            monthly_budget_usd: None,
        }
    }

    #[test]
    fn the_dialog_names_where_the_set_goes_and_where_the_price_comes_from() {
        let local = plan("fal", Some("s3_not_public"), "fal");
        let english = words(&local, Some("en")).question;
        assert!(english.contains("not on the internet"), "{english}");
        assert!(english.contains("expires after a day"), "{english}");
        assert!(
            english.contains("Cost at fal's price for your account: $1.50"),
            "{english}"
        );
        let russian = words(&local, Some("ru")).question;
        assert!(russian.contains("не в интернете"), "{russian}");
        assert!(russian.contains("по цене fal"), "{russian}");
        let s3 = words(&plan("s3", None, "static"), Some("en")).question;
        assert!(
            s3.contains("your S3 storage") && s3.contains("Estimated cost: $1.50"),
            "{s3}"
        );
    }
}
