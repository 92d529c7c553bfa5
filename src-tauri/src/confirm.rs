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
    let storage_ru = if plan.storage == "s3" {
        "ваше хранилище S3"
    } else {
        "хранилище fal"
    };
    let storage_en = if plan.storage == "s3" {
        "your S3 storage"
    } else {
        "fal storage"
    };
    if is_russian(language) {
        Words {
            title: "Начать платное обучение?",
            question: format!(
                "Аватар «{}»: {} фото, {} шагов, {}–{} мин.\nНабор фото будет загружен в {storage_ru} и отправлен на fal.ai.\nПримерная стоимость: ${:.2} — её спишут с вашего счёта fal.",
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
                "Avatar \"{}\": {} photos, {} steps, {}–{} min.\nThe photo set is uploaded to {storage_en} and sent to fal.ai.\nEstimated cost: ${:.2}, charged to your fal account.",
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
