#!/usr/bin/env python3
"""A generated camera roll for the curation benchmark: COUNT 12 MP JPEGs (4032 x 3024 or
3024 x 4032), about 30% of one person (the subject: Obama's three photos and their edits from
tests/fixtures/identity), about 35% of other people (single portraits and group photos) and about
35% without people (tests/fixtures/faces none_*), each a random crop, zoom, mirror, light and
small turn of its source, enlarged to 12 MP. Deterministic for a given COUNT.

usage: make_roll.py --count 2000 --out DIR [--jobs 2]   (labels go to DIR.json)
"""
from __future__ import annotations

import argparse
import json
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = ROOT / "tests/fixtures/identity"
FACES = ROOT / "tests/fixtures/faces"

SUBJECT = ["obama_official.jpg", "obama_podium.jpg", "obama_standing.jpg", "obama_crop.jpg",
           "obama_dim_mirror.jpg"]
OTHERS = ["biden_official.jpg", "biden_mirror_warm.jpg", "collins.jpg", "collins_grey_tilt.jpg",
          "cameraman.jpg", "messi_closeup_mirror.jpg", "group_1.jpg", "group_2.jpg", "group_3.jpg",
          "group_4.jpg", "group_5.jpg", "group_6.jpg"]
NOBODY = sorted(path.name for path in FACES.glob("none_*.jpg"))


def make(job: tuple[int, str, str, str]) -> None:
    index, kind, source, out = job
    rng = random.Random(index)
    folder = IDENTITY if kind != "nobody" else FACES
    image = Image.open(folder / source).convert("RGB")
    # A random crop keeping at least 70% of each side (the framing changes, the face stays).
    keep = rng.uniform(0.7, 1.0)
    width, height = round(image.width * keep), round(image.height * keep)
    left = rng.randint(0, image.width - width)
    top = rng.randint(0, image.height - height)
    image = image.crop((left, top, left + width, top + height))
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.75, 1.25))
    image = image.rotate(rng.uniform(-4, 4), resample=Image.BICUBIC, expand=False)
    size = (4032, 3024) if image.width >= image.height else (3024, 4032)
    image = ImageOps.fit(image, size, Image.BICUBIC)
    image.save(out, quality=85)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2026)
    jobs, labels = [], {}
    for index in range(args.count):
        roll = rng.random()
        if roll < 0.30:
            kind, source = "subject", rng.choice(SUBJECT)
        elif roll < 0.65:
            kind, source = "other", rng.choice(OTHERS)
        else:
            kind, source = "nobody", rng.choice(NOBODY)
        name = f"IMG_{index:05d}.jpg"
        jobs.append((index, kind, source, str(args.out / name)))
        labels[name] = {"kind": kind, "source": source}
    with ProcessPoolExecutor(args.jobs) as pool:
        list(pool.map(make, jobs, chunksize=8))
    # Beside the folder, not in it: the folder is what gets curated.
    args.out.with_suffix(".json").write_text(json.dumps(labels, indent=0) + "\n")


if __name__ == "__main__":
    main()
