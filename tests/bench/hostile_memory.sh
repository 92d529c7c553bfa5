#!/usr/bin/env bash
# Peak memory of checking and of importing the bad-input corpus beside COUNT generated photos,
# with the hostile files first and last in the folder (GNU time's maximum resident set size).
# The corpus: every validation case in tests/fixtures/cases, plus files that are small on disk
# and huge once opened (a PNG that unpacks to 9,000 × 9,000 RGBA, a progressive JPEG of
# 11,000 × 10,000 pixels), made once with Pillow.
# usage: bash tests/bench/hostile_memory.sh [COUNT]   (default 500; BENCH_PROFILE=debug to skip
# the release build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
count="${1:-500}"
profile="${BENCH_PROFILE:-release}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

command -v /usr/bin/time >/dev/null || apt-get install -y -qq time
source "$root/tests/bench/bench_photos.sh"

cd "$root"
if [ "$profile" = release ]; then
  cargo build -q --locked --release -p avatar-cli
else
  # The test command's own build, so a warm target directory is reused as it is.
  cargo build -q --locked --workspace --bins
fi
cli="$CARGO_TARGET_DIR/$profile/avatar-cli"

hostile="$(dirname "$photos")/hostile-corpus"
if [ ! -f "$hostile/done" ]; then
  mkdir -p "$hostile"
  cp "$root"/tests/fixtures/cases/*.* "$hostile/"
  rm -f "$hostile/cases.json"
  "$venv/bin/python" - "$hostile" <<'PY'
import sys
from PIL import Image
out = sys.argv[1]
Image.new("RGBA", (9000, 9000)).save(f"{out}/small_file_huge_png.png", optimize=True)
Image.new("RGB", (11000, 10000), (90, 120, 150)).save(
    f"{out}/huge_progressive.jpg", quality=90, progressive=True)
PY
  touch "$hostile/done"
fi

stage="$(dirname "$photos")/hostile-stage"
for order in first last; do
  rm -rf "$stage" && mkdir -p "$stage"
  # Folder order is name order: a prefix puts the corpus before or after the photos.
  prefix=$([ "$order" = first ] && echo "0000" || echo "zzzz")
  for file in "$hostile"/*.*; do ln -f "$file" "$stage/${prefix}_$(basename "$file")" 2>/dev/null || cp "$file" "$stage/${prefix}_$(basename "$file")"; done
  for file in "$photos"/*.jpg; do ln -f "$file" "$stage/p_$(basename "$file")" 2>/dev/null || cp "$file" "$stage/p_$(basename "$file")"; done
  library="$(mktemp -d)"
  /usr/bin/time -f "%M" -o /tmp/bench-rss "$cli" --library "$library" photos check --type portrait --json "$stage" > /dev/null
  check_rss=$(( $(cat /tmp/bench-rss) / 1024 ))
  avatar=$("$cli" --library "$library" avatar create --name Bench --type portrait --gender other --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  AVATAR_MAX_PHOTOS=1000 /usr/bin/time -f "%M" -o /tmp/bench-rss "$cli" --library "$library" photos add "$avatar" "$stage" --json > /dev/null
  add_rss=$(( $(cat /tmp/bench-rss) / 1024 ))
  echo "corpus $order, $(ls "$stage" | wc -l) files: photos check peak RSS ${check_rss} MiB, photos add peak RSS ${add_rss} MiB"
  rm -rf "$library"
done
rm -rf "$stage"
