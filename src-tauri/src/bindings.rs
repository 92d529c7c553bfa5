//! The UI's TypeScript types, generated from the Rust types that cross IPC. The committed file
//! must match what the Rust side produces; `UPDATE_BINDINGS=1 cargo test -p avatar-studio bindings`
//! rewrites it.

use std::path::Path;

use studio::{
    Avatar, AvatarStatus, ConnectionCheck, ConnectionProblem, ConnectionReport, ConnectionStep,
    DeletedAvatar, Diagnosis, ErrorCode, ErrorReport, Finding, Gender, JobFailure, JobState,
    JobStep, MonthSpending, Photo, PhotoCode, PhotoResult, PresetInfo, Readiness, SecretSource,
    SecretStatus, Service, Setting, SettingsView, Spending, TrainingChoices, TrainingJob,
    TrainingPlan, TrainingType, Transfer, UpdateChannel, Verdict, WatchProblem, WatchProblemCode,
};
use ts_rs::TS;

use crate::commands::{AvatarCard, ImportUpdate, PhotoEntry, PhotoSet, WatchFolder};
use crate::events::WatchedUpdate;
use crate::state::AppInfo;

const BINDINGS_FILE: &str = "../ui/src/lib/ipc/bindings.ts";

fn typescript() -> String {
    let declarations = [
        AppInfo::decl(),
        Avatar::decl(),
        AvatarCard::decl(),
        AvatarStatus::decl(),
        ConnectionCheck::decl(),
        ConnectionProblem::decl(),
        ConnectionReport::decl(),
        DeletedAvatar::decl(),
        ConnectionStep::decl(),
        Diagnosis::decl(),
        ErrorCode::decl(),
        ErrorReport::decl(),
        Finding::decl(),
        Gender::decl(),
        ImportUpdate::decl(),
        JobFailure::decl(),
        JobState::decl(),
        JobStep::decl(),
        Photo::decl(),
        PhotoCode::decl(),
        PhotoEntry::decl(),
        PhotoResult::decl(),
        PhotoSet::decl(),
        PresetInfo::decl(),
        Readiness::decl(),
        SecretSource::decl(),
        SecretStatus::decl(),
        Service::decl(),
        Setting::decl(),
        SettingsView::decl(),
        TrainingChoices::decl(),
        TrainingJob::decl(),
        TrainingPlan::decl(),
        TrainingType::decl(),
        Transfer::decl(),
        UpdateChannel::decl(),
        Spending::decl(),
        MonthSpending::decl(),
        Verdict::decl(),
        WatchFolder::decl(),
        WatchedUpdate::decl(),
        WatchProblem::decl(),
        WatchProblemCode::decl(),
    ];
    let mut text = String::from(
        "// Generated from the Rust types by `UPDATE_BINDINGS=1 cargo test -p avatar-studio bindings`.\n// Do not edit by hand.\n",
    );
    for declaration in declarations {
        text.push_str("\nexport ");
        text.push_str(&declaration);
        text.push('\n');
    }
    text
}

#[test]
fn committed_bindings_match_the_rust_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(BINDINGS_FILE);
    let expected = typescript();
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        std::fs::write(&path, &expected).expect("write bindings");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{} is stale: run `UPDATE_BINDINGS=1 cargo test -p avatar-studio bindings` and commit it",
        path.display()
    );
}
