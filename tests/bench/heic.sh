#!/usr/bin/env bash
# HEIC benchmark (issue 17 figure): the same 12 MP photo checked as a HEIC and as a JPEG, whole
# portrait check (decode, faces, identity, quality), release build, one core, mean of 10 runs.
# The HEIC is made from the JPEG with Debian's heif-enc at quality 90, as an iPhone-like file.
# usage: bash tests/bench/heic.sh [PHOTO.jpg]   (default: a 12 MP portrait from make_photos.py bench)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
command -v heif-enc >/dev/null || apt-get install -y -qq libheif-examples
photo="${1:-}"
if [ -z "$photo" ]; then
  bench="${BENCH_DIR:-$HOME/.cache/avatar-studio/bench-20x12mp}"
  if [ ! -f "$bench/photo_04.jpg" ]; then
    venv="${BENCH_VENV:-$HOME/.cache/avatar-studio/bench-venv}"
    [ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q pillow numpy scikit-image; }
    "$venv/bin/python" "$root/tests/fixtures/make_photos.py" bench --count 20 --out "$bench" --seed 1
  fi
  photo="$bench/photo_04.jpg"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$photo" "$work/photo.jpg"
heif-enc -q 90 -o "$work/photo.heic" "$work/photo.jpg" >/dev/null
cd "$root"
cargo build -q --locked --release -p avatar-photos --example stage_times
for file in "$work/photo.jpg" "$work/photo.heic"; do
  printf '%s (%s bytes): ' "$(basename "$file")" "$(stat -c %s "$file")"
  "$CARGO_TARGET_DIR/release/examples/stage_times" "$file" | grep "whole check portrait"
done
