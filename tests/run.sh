#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust tests, the UI's type-check and unit tests, and the
# end-to-end tests of the real app window under Xvfb. Sets the machine up first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/src-tauri/scripts/setup.sh"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

step() { printf '\n== %s\n' "$*"; }

step "UI build (the app embeds ui/dist)"
(cd ui && npm run --silent build)

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "Rust tests"
cargo test --locked --workspace

step "UI type-check and unit tests"
(cd ui && npm run --silent check && npm test --silent)

step "End-to-end tests of the real app (Xvfb, tauri-driver, WebKitWebDriver)"
cargo build --locked --workspace --bins
# A private session bus, so the app's notifications and keychain never touch the host's; a screen
# the size of a laptop's, so the screenshots show the app as creators see it.
xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- bash tests/e2e/session.sh
