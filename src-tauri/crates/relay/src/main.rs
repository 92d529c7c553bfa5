//! `avatar-relay`: receives fal's webhooks for the desktop app. See `deploy/` for running it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use relay::{Relay, RelayConfig};

#[derive(Parser)]
#[command(
    version,
    about = "Receives fal.ai's webhooks and serves them as a feed Avatar Studio follows."
)]
struct Args {
    /// The address to listen on; put a TLS-terminating reverse proxy in front of it.
    #[arg(long, env = "RELAY_LISTEN", default_value = relay::DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// The SQLite file holding the events.
    #[arg(long, env = "RELAY_DB", default_value = "avatar-relay.sqlite3")]
    db: PathBuf,

    /// The relay token the app and trusted senders present. A flag shows in the process list:
    /// prefer the environment or --token-file.
    #[arg(
        long,
        env = "RELAY_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    token: Option<String>,

    /// A file holding the relay token (surrounding whitespace is ignored).
    #[arg(long, env = "RELAY_TOKEN_FILE")]
    token_file: Option<PathBuf>,

    /// Where fal publishes the keys its webhooks are signed with.
    #[arg(long, env = "FAL_JWKS_URL", default_value = relay::DEFAULT_JWKS_URL)]
    jwks_url: String,

    /// The largest request body accepted, in bytes.
    #[arg(long, env = "RELAY_BODY_LIMIT", default_value_t = relay::DEFAULT_BODY_LIMIT)]
    body_limit: usize,

    /// Requests per minute from one client address; 0 for no limit.
    #[arg(long, env = "RELAY_RATE_LIMIT", default_value_t = relay::DEFAULT_RATE_LIMIT_PER_MINUTE)]
    rate_limit: u32,

    /// Days to keep events (at least 1).
    #[arg(long, env = "RELAY_RETENTION_DAYS", default_value_t = 30)]
    retention_days: u64,

    /// Seconds to use fal's keys before fetching them again (at most 86400).
    #[arg(long, env = "RELAY_JWKS_CACHE_SECS", default_value_t = relay::DEFAULT_JWKS_CACHE.as_secs())]
    jwks_cache_secs: u64,

    /// Take the client address from X-Forwarded-For, as set by a reverse proxy in front.
    /// Only behind one: otherwise clients could choose their address.
    #[arg(long, env = "RELAY_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,

    /// The fal account (user id, as in fal's X-Fal-Webhook-User-Id) whose signed webhooks are
    /// stored; repeat for several. Required, unless --any-fal-account.
    #[arg(
        long = "fal-user-id",
        env = "RELAY_FAL_USER_IDS",
        value_delimiter = ','
    )]
    fal_user_ids: Vec<String>,

    /// Store any fal account's signed webhooks: anyone with a fal account could then fill the
    /// store. Only instead of --fal-user-id.
    #[arg(long, env = "RELAY_ANY_FAL_ACCOUNT", conflicts_with = "fal_user_ids")]
    any_fal_account: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("avatar-relay: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => token.clone(),
        (None, Some(path)) => read_token(path)?,
        (None, None) => bail!(
            "no relay token: set RELAY_TOKEN or RELAY_TOKEN_FILE (or --token-file); generate one with `openssl rand -hex 32` and give the same token to Avatar Studio"
        ),
    };
    if args.fal_user_ids.is_empty() && !args.any_fal_account {
        bail!(
            "no fal account: set --fal-user-id YOUR_FAL_USER_ID (or RELAY_FAL_USER_IDS) so only your account's webhooks are stored, or --any-fal-account to store any account's"
        );
    }
    let config = RelayConfig {
        listen: args.listen,
        db: args.db,
        token,
        jwks_url: args.jwks_url,
        body_limit: args.body_limit,
        rate_limit_per_minute: args.rate_limit,
        retention: Duration::from_secs(args.retention_days.saturating_mul(24 * 60 * 60)),
        jwks_cache: Duration::from_secs(args.jwks_cache_secs),
        trust_forwarded_for: args.trust_forwarded_for,
        fal_user_ids: args.fal_user_ids,
        header_read_timeout: relay::DEFAULT_HEADER_READ_TIMEOUT,
    };
    let accounts = if config.fal_user_ids.is_empty() {
        "any fal account's webhooks (--any-fal-account)".to_owned()
    } else {
        format!(
            "webhooks of fal accounts {}",
            config.fal_user_ids.join(", ")
        )
    };
    let description = format!(
        "store {}, fal keys from {}, {accounts}",
        config.db.display(),
        config.jwks_url
    );
    let relay = Relay::start(config).await?;
    eprintln!(
        "avatar-relay {} listening on {} ({description})",
        env!("CARGO_PKG_VERSION"),
        relay.url()
    );
    shutdown_signal().await?;
    eprintln!("avatar-relay: stopping");
    relay.stop().await;
    Ok(())
}

fn read_token(path: &Path) -> Result<String> {
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the relay token file {}", path.display()))?;
    Ok(token.trim().to_owned())
}

/// Ctrl-C, or SIGTERM from systemd or a container runtime.
async fn shutdown_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot watch Ctrl-C")?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch Ctrl-C")?;
    Ok(())
}
