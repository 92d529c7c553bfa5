#!/usr/bin/env bash
# Sets up the machine, builds the UI and the app, and opens Avatar Studio.
# Extra arguments go to the app, e.g. --library DIR.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$root/src-tauri/scripts/setup.sh"
cd "$root"
(cd ui && npm run --silent build)
# The app opens HEIC and AVIF files through avatar-heif, a program beside its own.
cargo build --locked -p avatar-studio -p photos --bins
exec cargo run --locked -p avatar-studio -- "$@"
