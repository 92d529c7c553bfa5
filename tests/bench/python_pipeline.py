"""The baseline the photo checks are measured against: a typical Python pipeline, on both cores.

PIL with draft (DCT-scaled) decoding, OpenCV's Haar face detector, the variance of the Laplacian,
imagehash's pHash and hashlib's MD5: per photo, what avatar-cli's `photos check` does.

usage: python python_pipeline.py DIR [--jobs 2]   (needs pillow, numpy, opencv-python-headless, imagehash)
Prints one line: photos, seconds, photos per second.
"""
import argparse
import hashlib
import multiprocessing
import os
import sys
import time

import cv2
import imagehash
import numpy as np
from PIL import Image, ImageOps

_cascade = None


def load(path: str) -> tuple[bytes, Image.Image]:
    """The file's bytes and its picture, decoded DCT-scaled like the Rust side, upright."""
    with open(path, "rb") as handle:
        data = handle.read()
    with Image.open(path) as image:
        image.draft("RGB", (640, 640))
        image = ImageOps.exif_transpose(image).convert("RGB")
        image.thumbnail((640, 640))
    return data, image


def measure(data: bytes, image: Image.Image) -> tuple[int, float]:
    """Faces (Haar), sharpness, pHash and MD5: what the per-photo checks compute."""
    global _cascade
    if _cascade is None:
        _cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    md5 = hashlib.md5(data).hexdigest()
    grey = np.asarray(image.convert("L"))
    faces = _cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    sharpness = cv2.Laplacian(grey, cv2.CV_64F).var() / max(grey.var(), 1.0)
    phash = imagehash.phash(image)
    return len(faces), sharpness + len(md5) * 0 + len(str(phash)) * 0


def check(path: str) -> tuple[int, float]:
    return measure(*load(path))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    paths = sorted(os.path.join(args.dir, name) for name in os.listdir(args.dir) if name.lower().endswith(".jpg"))
    start = time.perf_counter()
    with multiprocessing.Pool(args.jobs) as pool:
        results = pool.map(check, paths, chunksize=1)
    elapsed = time.perf_counter() - start
    faces = sum(1 for count, _ in results if count > 0)
    print(f"python pipeline: {len(paths)} photos in {elapsed:.2f} s = {len(paths) / elapsed:.2f} photos/s ({faces} with faces)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
