#!/usr/bin/env bash
# Curation benchmark (issue 17 figures): `avatar-cli photos curate` on COUNT generated 12 MP photos
# (tests/bench/make_roll.py: ~30% of one person, ~35% other people, ~35% without people), release
# build, on this machine's cores. Reports the time to the picked set, the time per stage (decode,
# detect, identity, other measures: CPU time summed over the cores; pick: wall time), the peak
# memory (GNU time's maximum resident set size) and how well the picked set matches the labels.
# usage: bash tests/bench/curate.sh [COUNT]   (default 2000; photos are cached in $BENCH_ROLL)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
count="${1:-2000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
roll="${BENCH_ROLL:-$HOME/.cache/avatar-studio/roll-$count}"
venv="${BENCH_VENV:-$HOME/.cache/avatar-studio/bench-venv}"

command -v /usr/bin/time >/dev/null || apt-get install -y -qq time
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pillow
fi
if [ ! -f "$roll.json" ]; then
  "$venv/bin/python" "$root/tests/bench/make_roll.py" --count "$count" --out "$roll" --jobs 2
fi

cd "$root"
cargo build -q --locked --release -p avatar-cli
cli="$CARGO_TARGET_DIR/release/avatar-cli"
library="$(mktemp -d)"
trap 'rm -rf "$library"' EXIT
avatar=$("$cli" --library "$library" avatar create --name Roll --type portrait --gender male --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')

# Drop the page cache's advantage of a second run: every file is read once before timing.
cat "$roll"/*.jpg > /dev/null
/usr/bin/time -v -o /tmp/curate-time "$cli" --library "$library" photos curate "$avatar" "$roll" \
  --json --times > /tmp/curate-results.jsonl 2> /tmp/curate-stages.json

python3 - "$roll.json" <<'PY'
import json, re, sys
labels = json.load(open(sys.argv[1]))
lines = [json.loads(line) for line in open("/tmp/curate-results.jsonl")]
stages = json.loads(open("/tmp/curate-stages.json").read().strip().splitlines()[-1])
gnu = open("/tmp/curate-time").read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", gnu).group(1)
parts = [float(part) for part in wall.split(":")]
seconds = sum(part * 60 ** power for power, part in enumerate(reversed(parts)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", gnu).group(1))
picked = [line for line in lines if line["picked"]]
kinds = {}
for line in picked:
    kind = labels[line["path"].rsplit("/", 1)[-1]]["kind"]
    kinds[kind] = kinds.get(kind, 0) + 1
different = sum("different_person" in line["reasons"] for line in lines
                if labels[line["path"].rsplit("/", 1)[-1]]["kind"] == "subject")
print(f"files: {len(lines)}; picked: {len(picked)} ({kinds})")
print(f"subject photos called a different person: {different} of "
      f"{sum(label['kind'] == 'subject' for label in labels.values())}")
print("poses picked:", sorted({line['pose'] for line in picked}),
      "framings:", sorted({line['framing'] for line in picked}),
      "light:", sorted({line['lighting'] for line in picked}))
print(f"time to the picked set: {seconds:.1f} s (goal < 60 s); peak memory {rss / 1024:.0f} MiB (goal < 400 MB)")
cpu = stages["cpu_s"]
print("| stage | time |")
print("|---|---|")
for stage in ["decode", "detect", "identity", "measure"]:
    print(f"| {stage} (CPU, summed over cores) | {cpu[stage]:.1f} s |")
print(f"| checking, wall | {stages['checking_wall_s']:.1f} s |")
print(f"| pick (main person, copies, choice), wall | {stages['picking_wall_s']:.2f} s |")
PY
