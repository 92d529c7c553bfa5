"""The baseline for portrait checks with identity: python_pipeline.py's per-photo work, plus
face embeddings the way the `face_recognition` package makes them (dlib's HOG face detector with
one upsampling, its 5-point landmarks and the face-recognition ResNet, 128 numbers per face), on
the same decoded picture, on both cores.

usage: python python_identity.py DIR [--jobs 2]
needs: pillow, numpy, opencv-python-headless, imagehash, dlib-bin, face-recognition-models
Prints one line: photos, seconds, photos per second.
"""
import argparse
import multiprocessing
import os
import time

import dlib
import face_recognition_models
import numpy as np

from python_pipeline import load, measure

_models = None


def check(path: str) -> int:
    global _models
    if _models is None:
        _models = (
            dlib.get_frontal_face_detector(),
            dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location()),
            dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location()),
        )
    detector, landmarks, encoder = _models
    data, image = load(path)
    measure(data, image)
    rgb = np.asarray(image)
    faces = detector(rgb, 1)  # face_recognition.face_locations(model="hog"), one upsampling
    for face in faces:
        shape = landmarks(rgb, face)
        np.array(encoder.compute_face_descriptor(rgb, shape, 1))  # face_recognition.face_encodings
    return len(faces)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    paths = sorted(os.path.join(args.dir, name) for name in os.listdir(args.dir)
                   if name.lower().endswith(".jpg"))
    start = time.perf_counter()
    with multiprocessing.Pool(args.jobs) as pool:
        pool.map(check, paths, chunksize=1)
    seconds = time.perf_counter() - start
    print(f"python pipeline plus face_recognition's identity (dlib HOG + 5-point + ResNet): "
          f"{len(paths)} photos in {seconds:.2f} s = {len(paths) / seconds:.2f} photos/s")


if __name__ == "__main__":
    main()
