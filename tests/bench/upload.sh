#!/usr/bin/env bash
# Training benchmarks (issue figures):
#   1. packing and uploading 20 photos of about 20 MB to a local S3 server (s3s-fs), against a raw
#      aws-sdk-s3 multipart upload of the same bytes in the same run, with peak memory;
#   2. from fal's COMPLETED to a 90 MB LoRA verified in the library (fake fal on loopback).
# usage: bash tests/bench/upload.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
photos="${BENCH_BIG_PHOTOS:-$HOME/.cache/avatar-studio/bench-20x20mb}"
venv="${BENCH_VENV:-$HOME/.cache/avatar-studio/bench-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pillow numpy
fi
if [ "$(ls "$photos"/*.jpg 2>/dev/null | wc -l)" -lt 20 ]; then
  mkdir -p "$photos"
  "$venv/bin/python" - "$photos" <<'PY'
import sys, numpy as np
from PIL import Image
out = sys.argv[1]
rng = np.random.default_rng(7)
for index in range(20):
    # Fine noise over a gradient keeps JPEG from compressing: about 20 MB at 6000x4000, quality 95.
    y, x = np.mgrid[0:4000, 0:6000]
    base = np.stack([(x * 255 // 6000), (y * 255 // 4000), ((x + y) * 255 // 10000)], axis=-1)
    noise = rng.integers(-60, 60, size=base.shape)
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(f"{out}/big_{index:02d}.jpg", quality=95)
PY
fi
du -sh "$photos"
cd "$root"
cargo run -q --release --locked -p avatar-studio-core --example bench_upload -- "$photos"
cargo run -q --release --locked -p avatar-studio-core --example bench_model
