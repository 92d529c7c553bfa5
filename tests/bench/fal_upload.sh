#!/usr/bin/env bash
# fal storage benchmark (issue figure): 20 photos of 12 MP packed to more than 150 MB and
# uploaded to the fake fal's storage by multipart, against a raw single streamed PUT of the same
# bytes in the same run, with the peak memory of each.
# usage: bash tests/bench/fal_upload.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
photos="${BENCH_12MP_PHOTOS:-$HOME/.cache/avatar-studio/bench-20x12mp}"
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
rng = np.random.default_rng(12)
y, x = np.mgrid[0:3000, 0:4000]
base = np.stack([(x * 255 // 4000), (y * 255 // 3000), ((x + y) * 255 // 7000)], axis=-1)
for index in range(20):
    # Fine noise keeps JPEG from compressing: about 9 MB per 12 MP photo at quality 97.
    pixels = np.clip(base + rng.integers(-70, 70, size=base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(f"{out}/photo_{index:02d}.jpg", quality=97)
PY
fi
du -sh "$photos"
cd "$root"
cargo run -q --release --locked -p avatar-studio-core --example bench_fal_upload -- "$photos"
