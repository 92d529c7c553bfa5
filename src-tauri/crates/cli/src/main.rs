//! `avatar-cli`: the library from a terminal or a script. With `--json` every command prints JSON
//! only: results on stdout, and on failure one `{"code","message"}` object on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;
use studio::{Avatar, Config, ErrorReport, Gender, NewAvatar, Ports, Studio, TrainingType};

#[derive(Parser)]
#[command(
    name = "avatar-cli",
    version,
    about = "Manage Avatar Studio avatars from the command line"
)]
struct Cli {
    /// Library folder (default: $AVATAR_STUDIO_LIBRARY, then the platform's data directory).
    #[arg(long, global = true, value_name = "DIR")]
    library: Option<PathBuf>,
    /// Print JSON only.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, list, show, rename and delete avatars.
    #[command(subcommand)]
    Avatar(AvatarCommand),
}

#[derive(Subcommand)]
enum AvatarCommand {
    /// Create an avatar.
    Create {
        #[arg(long)]
        name: String,
        /// portrait (people) or style (styles, objects, places).
        #[arg(long = "type", value_name = "portrait|style")]
        training_type: TrainingType,
        #[arg(long, value_name = "male|female|other")]
        gender: Gender,
    },
    /// List all avatars.
    List,
    /// Show one avatar (full id or a unique prefix).
    Show { id: String },
    /// Rename an avatar.
    Rename { id: String, name: String },
    /// Delete an avatar and its photos.
    Delete { id: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if json {
                eprintln!("{}", json_text(&failure));
            } else {
                eprintln!("error: {}", failure.message);
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), ErrorReport> {
    let studio = Studio::open(Config::from_env(cli.library)?, Ports::system())?;
    let out = Output { json: cli.json };
    match cli.command {
        Command::Avatar(command) => match command {
            AvatarCommand::Create {
                name,
                training_type,
                gender,
            } => out.avatar(&studio.create_avatar(NewAvatar {
                name,
                gender,
                training_type,
            })?),
            AvatarCommand::List => out.avatars(&studio.list_avatars()?),
            AvatarCommand::Show { id } => out.avatar(&studio.avatar(&id)?),
            AvatarCommand::Rename { id, name } => out.avatar(&studio.rename_avatar(&id, &name)?),
            AvatarCommand::Delete { id } => {
                let deleted = studio.delete_avatar(&id)?;
                if out.json {
                    out.print_json(&serde_json::json!({"deleted": deleted.id}));
                } else {
                    out.line(&format!("deleted {} ({})", deleted.name, deleted.id));
                }
            }
        },
    }
    Ok(())
}

struct Output {
    json: bool,
}

impl Output {
    fn avatar(&self, avatar: &Avatar) {
        if self.json {
            self.print_json(avatar);
        } else {
            self.line(&describe(avatar));
        }
    }

    fn avatars(&self, avatars: &[Avatar]) {
        if self.json {
            self.print_json(&avatars);
        } else if avatars.is_empty() {
            self.line("no avatars yet: create one with `avatar-cli avatar create`");
        } else {
            for avatar in avatars {
                self.line(&describe(avatar));
            }
        }
    }

    fn print_json(&self, value: &impl Serialize) {
        self.line(&json_text(value));
    }

    fn line(&self, text: &str) {
        // A closed pipe (`avatar-cli ... | head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout(), "{text}");
    }
}

fn describe(avatar: &Avatar) -> String {
    format!(
        "{}  {}  {} {}  {}  {} photos",
        avatar.id,
        avatar.name,
        avatar.training_type,
        avatar.gender,
        avatar.status,
        avatar.photo_count
    )
}

fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|error| unreachable!("plain data always serialises: {error}"))
}
