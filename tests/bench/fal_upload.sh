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

# 12 MP, about 13 MB per photo: the set passes 150 MB.
width=4000 height=3000 quality=97
source "$root/tests/bench/noise_photos.sh"
cd "$root"
cargo run -q --release --locked -p studio --example bench_fal_upload -- "$photos"
