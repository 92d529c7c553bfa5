# Sourced by the benchmarks: sets $photos to a cached folder of $count generated 12 MP JPEGs
# (made once with tests/fixtures/make_photos.py) and $venv to the Python environment making them.
photos="${BENCH_PHOTOS:-$HOME/.cache/avatar-studio/bench-$count}"
venv="${BENCH_VENV:-$HOME/.cache/avatar-studio/bench-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pillow numpy "opencv-python-headless<5" imagehash scikit-image
fi
if [ ! -f "$photos/bench.json" ]; then
  "$venv/bin/python" "$root/tests/fixtures/make_photos.py" bench --count "$count" --out "$photos" --jobs 2
fi
