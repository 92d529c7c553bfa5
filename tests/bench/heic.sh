#!/usr/bin/env bash
# HEIC benchmark (issue 17 figure): the same 12 MP photo checked as a HEIC and as a JPEG, whole
# portrait check (decode, faces, identity, quality), release build, one core, mean of 10 runs.
# The HEIC is made from the JPEG with Debian's heif-enc at quality 50, about an iPhone's file size.
# usage: bash tests/bench/heic.sh [PHOTO.jpg]
#   default: good_portrait.jpg enlarged to 3024 x 4032 (an iPhone's 12 MP), saved at JPEG q92
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
command -v heif-enc >/dev/null || apt-get install -y -qq libheif-examples
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -n "${1:-}" ]; then
  cp "$1" "$work/photo.jpg"
else
  venv="${BENCH_VENV:-$HOME/.cache/avatar-studio/bench-venv}"
  [ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q pillow; }
  "$venv/bin/python" - "$root/tests/fixtures/cases/good_portrait.jpg" "$work/photo.jpg" <<'PY'
import sys
from PIL import Image
Image.open(sys.argv[1]).convert("RGB").resize((3024, 4032), Image.LANCZOS).save(sys.argv[2], quality=92)
PY
fi
heif-enc -q 50 -o "$work/photo.heic" "$work/photo.jpg" >/dev/null
cd "$root"
cargo build -q --locked --release -p photos --example stage_times
for file in "$work/photo.jpg" "$work/photo.heic"; do
  printf '%s (%s bytes): ' "$(basename "$file")" "$(stat -c %s "$file")"
  "$CARGO_TARGET_DIR/release/examples/stage_times" "$file" | grep "whole check portrait"
done
