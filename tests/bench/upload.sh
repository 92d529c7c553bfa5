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

# About 20 MB per photo.
width=6000 height=4000 quality=95
source "$root/tests/bench/noise_photos.sh"
cd "$root"
cargo run -q --release --locked -p studio --example bench_upload -- "$photos"
cargo run -q --release --locked -p studio --example bench_model
