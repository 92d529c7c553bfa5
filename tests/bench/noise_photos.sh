# Sourced by the upload benchmarks: makes 20 JPEGs of $width × $height in $photos (once), fine
# noise over a gradient so that JPEG cannot compress them, saved at $quality; $venv is the Python
# environment making them.
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pillow numpy
fi
if [ "$(ls "$photos"/*.jpg 2>/dev/null | wc -l)" -lt 20 ]; then
  mkdir -p "$photos"
  "$venv/bin/python" - "$photos" "$width" "$height" "$quality" <<'PY'
import sys, numpy as np
from PIL import Image
out, width, height, quality = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(7)
y, x = np.mgrid[0:height, 0:width]
base = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 255 // (width + height))], axis=-1)
for index in range(20):
    pixels = np.clip(base + rng.integers(-70, 70, size=base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(f"{out}/photo_{index:02d}.jpg", quality=quality)
PY
fi
du -sh "$photos"
