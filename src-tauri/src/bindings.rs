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
        "// Generated from the Rust types by `UPDATE_BINDINGS=1 cargo test -p avatar-studio bindings`.\n// Do not edit by hand.\n\nimport type { Channel } from \"@tauri-apps/api/core\";\n",
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
    // Each command's arguments and reply, read from its function, so a renamed or retyped
    // argument fails the UI's type-check.
    let mut signatures = command_signatures();
    let mut names: Vec<&str> = signatures
        .iter()
        .map(|signature| signature.name.as_str())
        .collect();
    names.sort_unstable();
    let mut listed = COMMANDS.to_vec();
    listed.sort_unstable();
    assert_eq!(
        names, listed,
        "src/commands.rs and src/command_list.rs name the same commands"
    );
    signatures.sort_by_key(|signature| COMMANDS.iter().position(|name| *name == signature.name));
    let arguments: Vec<String> = signatures
        .iter()
        .map(|signature| match signature.arguments.as_slice() {
            [] => format!("  {}: {{}};", signature.name),
            arguments => format!("  {}: {{ {} }};", signature.name, arguments.join("; ")),
        })
        .collect();
    let replies: Vec<String> = signatures
        .iter()
        .map(|signature| format!("  {}: {};", signature.name, signature.reply))
        .collect();
    text.push_str(&format!(
        "\nexport type CommandArgs = {{\n{}\n}};\n\nexport type CommandReplies = {{\n{}\n}};\n",
        arguments.join("\n"),
        replies.join("\n")
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

/// A command as the UI calls it: its name, its arguments (camelCase, as Tauri takes them) and
/// the type its reply carries.
struct Signature {
    name: String,
    arguments: Vec<String>,
    reply: String,
}

/// The `#[tauri::command]` functions of `src/commands.rs`, in their order there.
fn command_signatures() -> Vec<Signature> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands.rs");
    let file = syn::parse_file(&std::fs::read_to_string(&path).expect("commands.rs"))
        .expect("commands.rs parses");
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Fn(function)
                if function.attrs.iter().any(|attr| {
                    attr.path()
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "command")
                }) =>
            {
                Some(function)
            }
            _ => None,
        })
        .map(|function| {
            let arguments = function
                .sig
                .inputs
                .iter()
                .filter_map(|input| match input {
                    syn::FnArg::Typed(typed) => Some(typed),
                    syn::FnArg::Receiver(_) => None,
                })
                .filter(|typed| !is_injected(&typed.ty))
                .map(|typed| {
                    let syn::Pat::Ident(name) = typed.pat.as_ref() else {
                        panic!("a command argument is a plain name");
                    };
                    format!(
                        "{}: {}",
                        camel_case(&name.ident.to_string()),
                        typescript_of(&typed.ty)
                    )
                })
                .collect();
            let syn::ReturnType::Type(_, reply) = &function.sig.output else {
                panic!("{} answers with a Reply", function.sig.ident);
            };
            let reply = generic_arguments(reply)
                .first()
                .map(typescript_of)
                .unwrap_or_else(|| panic!("{} answers with a Reply<T>", function.sig.ident));
            Signature {
                name: function.sig.ident.to_string(),
                arguments,
                reply,
            }
        })
        .collect()
}

/// Arguments Tauri fills itself: the state, the app, the window.
fn is_injected(ty: &syn::Type) -> bool {
    ["State", "AppHandle", "Window"].contains(&last_segment(ty).as_str())
}

fn last_segment(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(path) => path
            .path
            .segments
            .last()
            .map(|segment| segment.ident.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn generic_arguments(ty: &syn::Type) -> Vec<syn::Type> {
    let syn::Type::Path(path) = ty else {
        return Vec::new();
    };
    let Some(segment) = path.path.segments.last() else {
        return Vec::new();
    };
    let syn::PathArguments::AngleBracketed(arguments) = &segment.arguments else {
        return Vec::new();
    };
    arguments
        .args
        .iter()
        .filter_map(|argument| match argument {
            syn::GenericArgument::Type(ty) => Some(ty.clone()),
            _ => None,
        })
        .collect()
}

/// A Rust argument or reply type as the UI's TypeScript names it.
fn typescript_of(ty: &syn::Type) -> String {
    if let syn::Type::Tuple(tuple) = ty
        && tuple.elems.is_empty()
    {
        return "null".into();
    }
    let inner = generic_arguments(ty);
    let first = || typescript_of(inner.first().expect("a type argument"));
    match last_segment(ty).as_str() {
        "String" => "string".into(),
        "bool" => "boolean".into(),
        "u8" | "u16" | "u32" | "f32" | "f64" => "number".into(),
        "Uuid" => "string".into(),
        "Vec" => format!("Array<{}>", first()),
        "Option" => format!("{} | null", first()),
        "Parsed" => first(),
        "Channel" => format!("Channel<{}>", first()),
        "BTreeMap" | "HashMap" => format!(
            "Record<{}, {}>",
            typescript_of(&inner[0]),
            typescript_of(&inner[1])
        ),
        named => named.to_string(),
    }
}

fn camel_case(snake: &str) -> String {
    let mut words = snake.split('_');
    let first = words.next().unwrap_or_default().to_string();
    words.fold(first, |mut text, word| {
        let mut letters = word.chars();
        if let Some(initial) = letters.next() {
            text.extend(initial.to_uppercase());
            text.push_str(letters.as_str());
        }
        text
    })
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
