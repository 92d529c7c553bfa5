#!/usr/bin/env bash
# The desktop figures, in the real app under Xvfb: cold start to first paint and to an interactive
# My avatars list with 1,000 avatars, frame times while scrolling 20,000 photos, and the app's
# memory at rest and after importing 200 photos. Drives the debug build `tests/run.sh` leaves.
# usage: bash tests/bench/desktop.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
count=200
source "$root/tests/bench/bench_photos.sh"

cd "$root"
cargo build -q --locked --release -p library --example seed_library
cargo build -q --locked --workspace --bins
cli="$CARGO_TARGET_DIR/debug/avatar-cli"
seed="$CARGO_TARGET_DIR/release/examples/seed_library"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One real thumbnail, made by the app's own import, for every seeded photo.
mkdir -p "$work/one"
avatar="$("$cli" --library "$work/one" --json avatar create --name One --type style --gender other | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
"$cli" --library "$work/one" photos add "$avatar" tests/fixtures/cases/good_style.jpg >/dev/null
thumbnail="$(find "$work/one/thumbnails" -type f | head -n 1)"

"$seed" "$work/avatars" 1000 0 "$thumbnail"
"$seed" "$work/photos" 1 20000 "$thumbnail"

xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- node tests/bench/desktop.mjs "$work/avatars" "$work/photos" "$photos"
