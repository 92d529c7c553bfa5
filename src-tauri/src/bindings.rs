//! The UI's TypeScript types, generated from the Rust types that cross IPC. The committed file
//! must match what the Rust side produces; `UPDATE_BINDINGS=1 cargo test -p avatar-studio bindings`
//! rewrites it.

use std::path::Path;

use studio::{
    AvatarId, AvatarStatus, AvatarView, ConnectionCheck, ConnectionProblem, ConnectionReport,
    ConnectionStep, Coverage, CoverageGap, CurateProgress, CurateResult, DeletedAvatar, Diagnosis,
    ErrorCode, ErrorReport, Finding, Framing, FramingCounts, GalleryImageView, Gender,
    GenerationPlan, GenerationRequest, GenerationState, GenerationSummary, GenerationView,
    JobFailure, JobId, JobState, JobStep, JobView, Lighting, LightingCounts, LikenessBand,
    MonthSpending, NotFitting, Pack, PhotoCode, PhotoId, PhotoResult, PhotoView, Pose, PoseCounts,
    PresetInfo, Readiness, SecretSource, SecretStatus, Service, Setting, SettingsView, Spending,
    TrainingChoices, TrainingPlan, TrainingType, Transfer, UpdateChannel, Verdict, WatchProblem,
    WatchProblemCode,
};
use ts_rs::TS;

use crate::command_list::COMMANDS;
use crate::commands::{
    AvatarCard, GalleryEntry, GalleryView, ImportUpdate, PhotoEntry, PhotoSet, WatchFolder,
};
use crate::events::{
    CHANNEL, Event, GENERATION, OPEN_AVATAR, TRAINING, WATCH, WATCHED_PHOTO, WatchChange,
    WatchedUpdate,
};
use crate::state::AppInfo;

const BINDINGS_FILE: &str = "../ui/src/lib/ipc/bindings.ts";

fn typescript() -> String {
    let declarations = [
        AppInfo::decl(),
        AvatarView::decl(),
        AvatarId::decl(),
        PhotoId::decl(),
        JobId::decl(),
        AvatarCard::decl(),
        AvatarStatus::decl(),
        ConnectionCheck::decl(),
        GalleryEntry::decl(),
        GalleryImageView::decl(),
        GalleryView::decl(),
        GenerationView::decl(),
        GenerationPlan::decl(),
        GenerationRequest::decl(),
        GenerationState::decl(),
        GenerationSummary::decl(),
        LikenessBand::decl(),
        Pack::decl(),
        CurateProgress::decl(),
        CurateResult::decl(),
        Coverage::decl(),
        CoverageGap::decl(),
        Framing::decl(),
        FramingCounts::decl(),
        Lighting::decl(),
        LightingCounts::decl(),
        Pose::decl(),
        PoseCounts::decl(),
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
        NotFitting::decl(),
        PhotoView::decl(),
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
        JobView::decl(),
        TrainingPlan::decl(),
        TrainingType::decl(),
        Transfer::decl(),
        UpdateChannel::decl(),
        Spending::decl(),
        MonthSpending::decl(),
        Verdict::decl(),
        WatchFolder::decl(),
        WatchedUpdate::decl(),
        WatchChange::decl(),
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
    // The commands and events, so a name the backend does not have fails the type-check.
    let commands: Vec<String> = COMMANDS.iter().map(|name| format!("\"{name}\"")).collect();
    text.push_str(&format!(
        "\nexport type Command = {};\n",
        commands.join(" | ")
    ));
    // The presets, so every screen lists the same ones in the same order.
    let presets: Vec<String> = studio::Preset::ALL
        .iter()
        .map(|preset| format!("\"{}\"", preset.as_str()))
        .collect();
    text.push_str(&format!(
        "\nexport type Preset = {};\n\nexport const PRESETS: readonly Preset[] = [{}];\n",
        presets.join(" | "),
        presets.join(", ")
    ));
    // The events: each name, and the payload type the shell emits with it.
    let events = [
        described(&TRAINING),
        described(&GENERATION),
        described(&CHANNEL),
        described(&WATCHED_PHOTO),
        described(&WATCH),
        described(&OPEN_AVATAR),
    ];
    let names: Vec<String> = events
        .iter()
        .map(|(key, name, _)| format!("{key}: \"{name}\""))
        .collect();
    let payloads: Vec<String> = events
        .iter()
        .map(|(key, _, payload)| format!("{key}: {payload}"))
        .collect();
    text.push_str(&format!(
        "\nexport const EVENTS = {{ {} }} as const;\n\nexport type EventPayloads = {{ {} }};\n",
        names.join(", "),
        payloads.join(", ")
    ));
    text
}

/// An event's key, name and payload type in TypeScript.
fn described<T: TS>(event: &Event<T>) -> (&'static str, &'static str, String) {
    (event.key, event.name, T::name())
}

#[test]
fn the_capability_grants_every_command_and_nothing_else() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("capabilities/main.json");
    let capability: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("capability")).expect("JSON");
    let mut granted: Vec<String> = capability["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter_map(|permission| permission.as_str())
        .filter_map(|permission| permission.strip_prefix("allow-"))
        .map(|command| command.replace('-', "_"))
        .collect();
    granted.sort();
    let mut commands: Vec<String> = COMMANDS.iter().map(|name| name.to_string()).collect();
    commands.sort();
    assert_eq!(
        granted,
        commands,
        "{} and src/command_list.rs",
        path.display()
    );
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
