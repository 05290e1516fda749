#!/usr/bin/python3
"""Parity of `convlstm-run convert` output against PyTorch.

For random ConvLSTM configurations (layers, channels, odd kernels, bias,
gate order; seeded and replayable) this script

1. builds the reference ConvLSTM (scripts/reference.py) and torch.save's
   its state_dict;
2. runs `convlstm-run convert` to OUT.onnx (with and without
   --initial-state) and OUT.safetensors;
3. checks the .onnx files with onnx.checker (full check);
4. runs them in ONNX Runtime (node + onnxruntime-node, scripts/onnx_ort_run.js)
   and in convlstm-run's own interpreter, on inputs whose batch, length
   T in {1, 3, 7} and height/width were never seen at export (there is no
   export-time shape: the graph is one Scan for every size), and compares
   every output and final state with PyTorch;
5. loads the .safetensors back into the reference ConvLSTM with
   load_state_dict (gate order from its __metadata__) and checks the tensors
   are bitwise the state_dict's;
6. exports the same model with torch.onnx.export itself (random opset 11-17,
   static or with dynamic batch/height/width) and runs that graph through
   `convlstm-run run` (ONNX import), compared with PyTorch too.

ONNX Runtime comes from npm (onnxruntime-node, installed into scripts/ with
--ignore-scripts if missing: its install script's download fails here, the
CPU binaries are inside the package).

It prints the seed, per-configuration worst errors and the overall worst.
Pass criterion: |x - ref| <= atol + rtol*|ref| with atol = rtol = 1e-5 for
our interpreter and for ONNX Runtime.

    /usr/bin/python3 scripts/onnx_parity.py [--n 6] [--seed S] [--bin convlstm-run]
"""

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from onnx_make_fixtures import Wrap  # noqa: E402  (flat outputs: output, h_0, c_0, ...)
from reference import ConvLSTM, reference_outputs  # noqa: E402

ATOL = RTOL = 1e-5


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        assert v["dtype"] == "F32", v
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").copy().reshape(v["shape"]))
    return out, meta


def worst(got, ref):
    """(max abs error, max error / (atol + rtol |ref|)) over all values."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        raise AssertionError("shape %s, want %s" % (got.shape, ref.shape))
    d = np.abs(got - ref)
    return float(d.max(initial=0)), float((d / (ATOL + RTOL * np.abs(ref))).max(initial=0))


def random_config(rng):
    layers = rng.randint(1, 3)
    cin = rng.randint(1, 4)
    hidden = [rng.randint(1, 10) for _ in range(layers)]
    # 3×3 with input + hidden ≥ 8 channels takes convlstm-run's Winograd path.
    kernels = [(3, 3) if rng.random() < 0.4 else (rng.choice([1, 3, 5]), rng.choice([1, 3, 5]))
               for _ in range(layers)]
    gates = "".join(rng.sample("ifog", 4))
    return dict(input_dim=cin, hidden_dim=hidden, kernel_size=kernels, num_layers=layers,
                bias=rng.random() < 0.7, gates=gates), rng.choice([11, 13, 17])


ORT_VERSION = "1.30.0"


def ensure_ort():
    """Install onnxruntime-node into scripts/node_modules unless present."""
    probe = subprocess.run(["node", "-e", "require('onnxruntime-node')"], cwd=HERE,
                           env=dict(os.environ, NODE_PATH=os.path.join(HERE, "node_modules")),
                           capture_output=True)
    if probe.returncode == 0:
        return
    print("installing onnxruntime-node@%s from npm (--ignore-scripts)" % ORT_VERSION, flush=True)
    subprocess.run(["npm", "install", "--no-save", "--no-package-lock", "--ignore-scripts",
                    "--prefix", HERE, "onnxruntime-node@" + ORT_VERSION], check=True)


def check_torch_export(binary, m, cfg, d, rng):
    """Export m with torch.onnx.export and run the graph with convlstm-run.
    Returns (max abs error, max error / tolerance, description)."""
    opset = rng.randint(11, 17)
    dynamic = rng.random() < 0.5
    T = rng.randint(1, 4)
    B, H, W = rng.randint(1, 2), rng.randint(2, 8), rng.randint(2, 8)
    names = ["output"] + ["%s_%d" % (p, l) for l in range(cfg["num_layers"]) for p in "hc"]
    dyn = None
    if dynamic:
        dyn = {"input": {0: "batch", 3: "height", 4: "width"}, "output": {0: "batch", 3: "height", 4: "width"}}
        for n in names[1:]:
            dyn[n] = {0: "batch", 2: "height", 3: "width"}
    x = torch.from_numpy(np.random.RandomState(rng.randrange(1 << 30)).randn(B, T, cfg["input_dim"], H, W).astype(np.float32))
    path = os.path.join(d, "torch_export.onnx")
    w = Wrap(m).eval()
    with torch.no_grad():
        torch.onnx.export(w, (x,), path, opset_version=opset, input_names=["input"],
                          output_names=names, dynamic_axes=dyn)
    if dynamic:  # run on sizes never seen at export (time is unrolled, so it stays)
        B, H, W = rng.randint(1, 3), rng.randint(2, 9), rng.randint(2, 9)
        x = torch.from_numpy(np.random.RandomState(rng.randrange(1 << 30)).randn(B, T, cfg["input_dim"], H, W).astype(np.float32))
    with torch.no_grad():
        ref = [r.numpy() for r in w(x)]
    xin = os.path.join(d, "torch_export_x.npy")
    np.save(xin, x.numpy())
    out = os.path.join(d, "torch_export_out.npz")
    subprocess.run([binary, "run", "--weights", path, "--input", xin, "--output", out], check=True, capture_output=True)
    got = np.load(out)
    a = q = 0.0
    for name, r in zip(names, ref):
        ea, eq = worst(got[name], r)
        a, q = max(a, ea), max(q, eq)
    return a, q, "torch export opset %d %s T=%d B=%d %dx%d" % (opset, "dynamic" if dynamic else "static", T, B, H, W)


def run_ort(work, model, runs, threads=1):
    job = os.path.join(work, "job.json")
    with open(job, "w") as f:
        json.dump({"model": model, "threads": threads, "runs": runs}, f)
    env = dict(os.environ, NODE_PATH=os.path.join(HERE, "node_modules"))
    res = subprocess.run(["node", os.path.join(HERE, "onnx_ort_run.js"), job], env=env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("onnxruntime: " + res.stderr)
    return json.loads(res.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=6, help="number of random configurations")
    ap.add_argument("--seed", type=int, default=None, help="replay a run (default: random)")
    ap.add_argument("--bin", default=None, help="convlstm-run binary (default: go build it)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    print("seed %d  (replay: --seed %d)" % (seed, seed))
    rng = random.Random(seed)
    torch.manual_seed(seed)
    import onnx
    ensure_ort()

    work = tempfile.mkdtemp(prefix="onnx_parity_")
    binary = args.bin
    if binary is None:
        binary = os.path.join(work, "convlstm-run")
        subprocess.run(["go", "build", "-o", binary, "./cmd/convlstm-run"], cwd=ROOT, check=True)
    overall = {"ort": 0.0, "go": 0.0, "import": 0.0}
    overall_ratio = {"ort": 0.0, "go": 0.0, "import": 0.0}
    failures = 0
    try:
        for k in range(args.n):
            cfg, opset = random_config(rng)
            m = ConvLSTM(batch_first=True, return_all_layers=True, **cfg).eval()
            d = os.path.join(work, "c%d" % k)
            os.makedirs(d)
            pt = os.path.join(d, "model.pt")
            torch.save(m.state_dict(), pt)
            paths = {}
            for tag, extra in (("plain", []), ("state", ["--initial-state"])):
                paths[tag] = os.path.join(d, "model_%s.onnx" % tag)
                subprocess.run([binary, "convert", "--weights", pt, "--gates", cfg["gates"],
                                "--opset", str(opset), "--output", paths[tag]] + extra,
                               check=True, capture_output=True)
                onnx.checker.check_model(onnx.load(paths[tag]), full_check=True)
            st = os.path.join(d, "model.safetensors")
            subprocess.run([binary, "convert", "--weights", pt, "--gates", cfg["gates"], "--output", st],
                           check=True, capture_output=True)
            sd, meta = read_safetensors(st)
            m2 = ConvLSTM(batch_first=True, return_all_layers=True, **dict(cfg, gates=meta["gate_order"]))
            m2.load_state_dict(sd)  # strict: exactly the reference's keys and shapes
            for key, v in m.state_dict().items():
                assert torch.equal(v, m2.state_dict()[key]), key
            assert meta["gate_order"] == cfg["gates"], meta

            errs = {"ort": (0.0, 0.0), "go": (0.0, 0.0)}
            shapes = []
            for T in (1, 3, 7):
                B, H, W = rng.randint(1, 3), rng.randint(1, 9), rng.randint(1, 9)
                x = np.random.RandomState(rng.randrange(1 << 30)).randn(B, T, cfg["input_dim"], H, W).astype(np.float32)
                use_state = T == 3
                state = None
                inputs = {"input": x}
                if use_state:
                    state = {}
                    for l, hd in enumerate(cfg["hidden_dim"]):
                        for p in "hc":
                            state["%s_%d" % (p, l)] = np.random.RandomState(rng.randrange(1 << 30)).randn(B, hd, H, W).astype(np.float32)
                            inputs["%s0_%d" % (p, l)] = state["%s_%d" % (p, l)]
                ref = reference_outputs(m, x, state_in=state)
                shapes.append("T=%d B=%d %dx%d%s" % (T, B, H, W, " +state" if use_state else ""))
                model = paths["state" if use_state else "plain"]
                spec = {}
                for name, arr in inputs.items():
                    f = os.path.join(d, "in_T%d_%s.bin" % (T, name))
                    arr.tofile(f)
                    spec[name] = {"file": f, "shape": list(arr.shape)}
                prefix = os.path.join(d, "ort_T%d_" % T)
                run_ort(d, model, [{"inputs": spec, "out_prefix": prefix}])
                for name, r in ref.items():
                    got = np.fromfile(prefix + name + ".bin", dtype="<f4").reshape(r.shape)
                    a, q = worst(got, r)
                    errs["ort"] = (max(errs["ort"][0], a), max(errs["ort"][1], q))
                if not use_state:
                    # Our interpreter runs the same file through the CLI.
                    xin = os.path.join(d, "x_T%d.npy" % T)
                    np.save(xin, x)
                    out = os.path.join(d, "go_T%d.npz" % T)
                    subprocess.run([binary, "run", "--weights", model, "--input", xin, "--output", out],
                                   check=True, capture_output=True)
                    got = np.load(out)
                    for name, r in ref.items():
                        a, q = worst(got[name], r)
                        errs["go"] = (max(errs["go"][0], a), max(errs["go"][1], q))
            ia, iq, idesc = check_torch_export(binary, m, cfg, d, rng)
            errs["import"] = (ia, iq)
            shapes.append(idesc)
            ok = all(v[1] <= 1 for v in errs.values())
            failures += not ok
            for w in ("ort", "go", "import"):
                overall[w] = max(overall[w], errs[w][0])
                overall_ratio[w] = max(overall_ratio[w], errs[w][1])
            print("%-4s #%d opset %d layers=%d in=%d hidden=%s k=%s bias=%s gates=%s | %s | ORT max|err| %.2e (%.2f of tol)  go %.2e (%.2f of tol)  torch-export import %.2e (%.2f of tol)" % (
                "ok" if ok else "FAIL", k, opset, cfg["num_layers"], cfg["input_dim"], cfg["hidden_dim"],
                ["%dx%d" % kk for kk in cfg["kernel_size"]], cfg["bias"], cfg["gates"], "; ".join(shapes),
                errs["ort"][0], errs["ort"][1], errs["go"][0], errs["go"][1], errs["import"][0], errs["import"][1]))
    finally:
        if args.keep:
            print("work directory kept:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("seed %d: %d configurations, %d failed; worst |err| of our export in ONNX Runtime %.3g (%.2f of tolerance), in convlstm-run %.3g (%.2f of tolerance); torch-exported graphs in convlstm-run %.3g (%.2f of tolerance); onnx.checker passed on all" % (
        seed, args.n, failures, overall["ort"], overall_ratio["ort"], overall["go"], overall_ratio["go"], overall["import"], overall_ratio["import"]))
    print("onnx parity: %d passed, %d failed" % (args.n - failures, failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
