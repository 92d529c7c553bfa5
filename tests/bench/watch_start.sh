#!/usr/bin/env bash
# Watched-folder start benchmark: a style avatar watches a folder of N generated 12 MP JPEGs;
# the first start judges every file, a second start (nothing changed) should pass over them.
# usage: bash tests/bench/watch_start.sh [COUNT]   (default 200; photos are cached in $BENCH_PHOTOS)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
count="${1:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
source "$root/tests/bench/bench_photos.sh"

cd "$root"
cargo build -q --locked --release -p avatar-cli
cli="$CARGO_TARGET_DIR/release/avatar-cli"
library="$(mktemp -d)"
trap 'rm -rf "$library"' EXIT
avatar=$("$cli" --library "$library" avatar create --name Bench --type style --gender other --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')

python3 - "$cli" "$library" "$avatar" "$photos" <<'PY'
import collections, json, os, subprocess, sys, threading, time

cli, library, avatar, folder = sys.argv[1:5]

def start(expected, window):
    """Runs one watch until `expected` verdicts came (or `window` seconds); its CPU and verdicts."""
    began = time.time()
    watch = subprocess.Popen(
        [cli, "--library", library, "photos", "watch", "--json", avatar, folder],
        stdout=subprocess.PIPE, text=True)
    verdicts, last = [], [began]
    def read():
        for line in watch.stdout:
            verdicts.append(json.loads(line))
            last[0] = time.time()
    threading.Thread(target=read, daemon=True).start()
    while time.time() - began < window and len(verdicts) < expected:
        time.sleep(0.05)
    stat = open(f"/proc/{watch.pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    watch.kill()
    watch.wait()
    kinds = collections.Counter(",".join(v["reasons"]) or "accepted" for v in verdicts)
    return len(verdicts), last[0] - began, cpu, dict(kinds)

# bench.json sits beside the photos and is no photo: it is reported as unsupported.
files = len(os.listdir(folder))
first = start(files, 120)
print(f"first start:  {first[0]} verdicts, the last after {first[1]:.2f} s, CPU {first[2]:.2f} s  {first[3]}")
later = start(1, 6)
print(f"second start: {later[0]} verdicts in 6 s, CPU {later[2]:.2f} s")
PY
