#!/usr/bin/python3
"""Write the forward-pass fixtures that `go test ./...` replays (no Python at test time).

    /usr/bin/python3 scripts/make_fixtures.py [--only NAME ...] [--out fixtures/forward]

Each case is a folder fixtures/forward/<case>/ with

  weights.pt / weights.pth  the model as a user would have saved it (absent for the
                            real-checkpoint cases: case.json "weights" points at
                            ../../real/<file> instead of duplicating it)
  input.npy                 (B,T,C,H,W), or (T,B,C,H,W) when args has --time-first
  state_in.npz              optional: h_l, c_l of every layer, float32 (B,hidden,H,W)
  expected.npz              PyTorch's result in the CLI's OUT.npz form, float32:
                            output (last layer, input's layout), h_l, c_l for every
                            layer, and with --all-layers output_l for every layer
  case.json                 {"args": CLI flags other than --weights/--input/--output/
                            --state-in, "weights", "input", "state_in", "expected":
                            file names relative to the case folder, "model": the
                            architecture, "description", "torch", "command"}

The Go test runs `convlstm-run run --weights W --input input.npy [--state-in
state_in.npz] --output OUT.npz <args...>` (or the same through the package API)
and compares every tensor of expected.npz within 1e-5 + 1e-5*|ref|.

Precision: the reference always computes in float32.  Weights stored as
float16, bfloat16 or float64 are used as PyTorch's `.float()` of the stored
tensors (so the float64 case's weights are rounded to float32 first), and an
input stored as float16/float64 is used as numpy's `.astype(float32)`.

Seeds are fixed per case (crc32 of the case name), so a case's numbers do not
change when others are added.  The bytes of the .pt files are not reproducible
(torch's legacy format keys storages by memory address), the values are.
"""

import argparse
import copy
import io
import json
import os
import shlex
import shutil
import sys
import zipfile
import zlib

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import ConvLSTM, ConvLSTMCell, model_from_state_dict, reference_outputs  # noqa: E402
import provenance  # noqa: E402

COMMAND = "/usr/bin/python3 scripts/make_fixtures.py"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_REAL = os.environ.get("REAL_CHECKPOINTS", os.path.join(os.path.dirname(REPO), "shared", "real-checkpoints"))


def command_line():
    """The command that is writing the fixtures, as typed (with --only)."""
    return " ".join([COMMAND] + [shlex.quote(a) for a in sys.argv[1:]])


def save_npz(path, arrays):
    """np.savez with a fixed timestamp, so rewriting a fixture with the same
    values gives the same bytes (np.savez stamps the current time)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(a), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())


def describe(model):
    return {
        "input_dim": model.input_dim,
        "hidden": list(model.hidden_dim),
        "kernels": [list(k) for k in model.kernel_size],
        "bias": bool(model.bias),
        "gates": model.gates,
    }


# Wrappers: how the ConvLSTM's weights end up in the file.  Each returns the
# object to torch.save.

class Encoder(nn.Module):
    def __init__(self, convlstm):
        super().__init__()
        c = convlstm.input_dim
        self.stem = nn.Conv2d(c, c, 3, padding=1)
        self.norm = nn.BatchNorm2d(c)
        self.convlstm = convlstm


class Net(nn.Module):
    def __init__(self, convlstm):
        super().__init__()
        self.encoder = Encoder(convlstm)
        self.head = nn.Conv2d(convlstm.hidden_dim[-1], 1, 1)
        self.fc = nn.Linear(8, 2)


class Outer(nn.Module):
    def __init__(self, convlstm):
        super().__init__()
        self.net = Net(convlstm)


class CellHolder(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell


def wrap_bare(model):
    return model.state_dict()


def wrap_checkpoint(model):
    # One Adam step on a float32 copy (the saved weights stay untouched) so
    # the optimizer state holds tensors shaped like the weights.
    tmp = copy.deepcopy(model).float()
    opt = torch.optim.Adam(tmp.parameters(), lr=1e-3)
    sum((p * p).sum() for p in tmp.parameters()).backward()
    opt.step()
    return {"epoch": 7, "model_state_dict": model.state_dict(),
            "optimizer_state_dict": opt.state_dict(), "val_loss": 0.0123}


def wrap_dataparallel(model):
    return nn.DataParallel(model).state_dict()  # keys module.cell_list...


def wrap_nested(model):
    return Outer(model).state_dict()  # keys net.encoder.convlstm.cell_list...


def wrap_single_cell(model):
    assert model.num_layers == 1
    return CellHolder(model.cell_list[0]).state_dict()  # keys cell.conv.*


def wrap_pickled_module(model):
    return model  # torch.save pickles the whole module


def wrap_cell_state_dict(model):
    assert model.num_layers == 1
    return model.cell_list[0].state_dict()  # keys conv.weight, conv.bias (no prefix at all)


def wrap_pickled_cell(model):
    assert model.num_layers == 1
    return model.cell_list[0]  # a whole ConvLSTMCell module


WRAPPERS = {
    "bare": wrap_bare,
    "checkpoint": wrap_checkpoint,
    "dataparallel": wrap_dataparallel,
    "nested": wrap_nested,
    "single-cell": wrap_single_cell,
    "pickled-module": wrap_pickled_module,
    "cell-state-dict": wrap_cell_state_dict,
    "pickled-cell": wrap_pickled_cell,
}

WEIGHT_DTYPES = {"f32": torch.float32, "f16": torch.float16, "f64": torch.float64, "bf16": torch.bfloat16}
INPUT_DTYPES = {"f32": np.float32, "f16": np.float16, "f64": np.float64}


def make_model(input_dim, hidden, kernels, bias=True, gates="ifog", wdtype="f32"):
    """A ConvLSTM with PyTorch's default init, its weights stored in wdtype.

    Returns (stored, ref): stored holds the weights as they go into the
    file; ref is the float32 model the reference runs (stored.float())."""
    m = ConvLSTM(input_dim, list(hidden), list(kernels), len(hidden), batch_first=True,
                 bias=bias, return_all_layers=True, gates=gates)
    dt = WEIGHT_DTYPES[wdtype]
    if dt == torch.float64:
        # Draw the default init again in float64 so the weights really use
        # float64's precision (not just float32 values widened).
        m = m.double()
        for cell in m.cell_list:
            cell.conv.reset_parameters()
    else:
        m = m.to(dt)
    ref = copy.deepcopy(m).float()
    return m, ref


def write_case(out_dir, name, description, args, saved, ref, x, *, time_first=False, state_in=None,
               all_layers=False, legacy=False, weights_name="weights.pt", weights_ref=None, extra=None):
    """saved: the object to torch.save as the weights file, or None when
    weights_ref names an existing file instead."""
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    case = {"args": args, "description": description}
    if weights_ref is None:
        torch.save(saved, os.path.join(d, weights_name), _use_new_zipfile_serialization=not legacy)
        case["weights"] = weights_name
    else:
        case["weights"] = weights_ref
    np.save(os.path.join(d, "input.npy"), x)
    case["input"] = "input.npy"
    if state_in is not None:
        save_npz(os.path.join(d, "state_in.npz"), state_in)
        case["state_in"] = "state_in.npz"
    expected = reference_outputs(ref, x, time_first=time_first, state_in=state_in, all_layers=all_layers)
    save_npz(os.path.join(d, "expected.npz"), expected)
    case["expected"] = "expected.npz"
    case["model"] = describe(ref)
    if extra:
        case.update(extra)
    case["tolerance"] = {"abs": 1e-5, "rel": 1e-5}
    case["torch"] = torch.__version__
    case["numpy"] = np.__version__
    case["written_by"] = this_machine()
    case["command"] = command_line()
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=2)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print("  %-28s %7d bytes  %s" % (name, size, " ".join(args)))
    return size


def rand_input(shape, dtype="f32", fortran=False):
    x = torch.randn(*shape, dtype=torch.float64).numpy().astype(INPUT_DTYPES[dtype])
    return np.asfortranarray(x) if fortran else np.ascontiguousarray(x)


def rand_state(ref, B, H, W):
    st = {}
    for l, hid in enumerate(ref.hidden_dim):
        st["h_%d" % l] = (torch.rand(B, hid, H, W) * 2 - 1).numpy()
        st["c_%d" % l] = torch.randn(B, hid, H, W).numpy()
    return st


def seed_for(name):
    torch.manual_seed(zlib.crc32(name.encode()))


# ---------------------------------------------------------------------------
# Synthetic cases.  Each entry: name -> function(out_dir, name) -> bytes.

def simple(name, desc, *, C, hidden, kernels, B=1, T=3, H=6, W=6, bias=True, gates="ifog",
           wdtype="f32", idtype="f32", fortran=False, time_first=False, all_layers=False,
           with_state=False, wrapper="bare", legacy=False, weights_name="weights.pt", extra_args=()):
    def make(out_dir):
        seed_for(name)
        stored, ref = make_model(C, hidden, kernels, bias=bias, gates=gates, wdtype=wdtype)
        shape = (T, B, C, H, W) if time_first else (B, T, C, H, W)
        x = rand_input(shape, idtype, fortran)
        state = rand_state(ref, B, H, W) if with_state else None
        args = []
        if gates != "ifog":
            args += ["--gates", gates]
        if time_first:
            args += ["--time-first"]
        if all_layers:
            args += ["--all-layers"]
        args += list(extra_args)
        return write_case(out_dir, name, desc, args, WRAPPERS[wrapper](stored), ref, x,
                          time_first=time_first, state_in=state, all_layers=all_layers, legacy=legacy,
                          weights_name=weights_name)
    return name, make


def multi_cell(out_dir, name="multi-cell-prefix-enc2"):
    """Several separate cells in one state_dict (enc1, enc2, dec1), each a
    different shape so running the wrong one cannot pass; --prefix enc2."""
    seed_for(name)
    cells = {"enc1": ConvLSTMCell(2, 3, (3, 3)), "enc2": ConvLSTMCell(3, 4, (5, 3)),
             "dec1": ConvLSTMCell(4, 2, (3, 3))}
    sd = {}
    for p, c in cells.items():
        for k, v in c.state_dict().items():
            sd[p + "." + k] = v
    ref = model_from_state_dict(sd, "enc2")
    x = rand_input((2, 3, 3, 5, 7))
    return write_case(out_dir, name, "three single cells enc1 (2->3), enc2 (3->4, 5x3), dec1 (4->2) in "
                      "one state_dict; --prefix enc2 runs enc2 as a one-layer ConvLSTM",
                      ["--prefix", "enc2"], sd, ref, x)


SYNTHETIC = [
    simple("one-layer-3x3", "1 layer, input 2, hidden 4, 3x3 kernel, B=1 T=3 6x6",
           C=2, hidden=[4], kernels=[(3, 3)]),
    simple("two-layer-mixed-kernels", "2 layers 5x5 then 3x3, input 3, hidden [5,4], non-square 5x9 image",
           C=3, hidden=[5, 4], kernels=[(5, 5), (3, 3)], B=2, H=5, W=9),
    simple("kernel-3x5-and-1x1", "2 layers, non-square 3x5 kernel then 1x1, hidden [3,4], 6x7 image",
           C=2, hidden=[3, 4], kernels=[(3, 5), (1, 1)], H=6, W=7),
    simple("four-layers", "4 layers hidden [3,4,2,3], kernels 3x3, 5x3, 1x1, 3x3; --all-layers: every "
           "layer's h at every step (output_0..output_3)",
           C=2, hidden=[3, 4, 2, 3], kernels=[(3, 3), (5, 3), (1, 1), (3, 3)], H=5, W=6, all_layers=True),
    simple("no-bias", "2 layers without bias (Conv2d bias=False)",
           C=2, hidden=[4, 3], kernels=[(3, 3), (3, 3)], bias=False, W=5),
    simple("gates-fiog", "gate order f,i,o,g (--gates fiog)",
           C=2, hidden=[4], kernels=[(3, 3)], gates="fiog"),
    simple("gates-ifgo", "gate order i,f,g,o (--gates ifgo), 2 layers",
           C=2, hidden=[3, 4], kernels=[(3, 3), (3, 3)], gates="ifgo"),
    simple("time-first", "input (T,B,C,H,W) with --time-first; output and, with --all-layers, every "
           "layer's output_l in the same (T,B,...) layout",
           C=2, hidden=[3, 4], kernels=[(3, 3), (3, 3)], B=2, T=4, time_first=True, all_layers=True),
    simple("all-layers", "--all-layers: output_0..output_2 besides output (== output_2)",
           C=2, hidden=[3, 4, 2], kernels=[(3, 3), (1, 3), (3, 3)], B=2, all_layers=True),
    simple("initial-state", "initial h,c for both layers from state_in.npz (--state-in); --all-layers: "
           "every layer's h at every step from that state",
           C=2, hidden=[3, 4], kernels=[(3, 3), (3, 3)], B=2, with_state=True, all_layers=True),
    simple("batch3", "batch of 3, 2 layers", C=3, hidden=[4, 2], kernels=[(3, 3), (3, 3)], B=3, H=5),
    simple("checkpoint-dict", "checkpoint dict {epoch, model_state_dict, optimizer_state_dict (Adam, "
           "tensors shaped like the weights), val_loss}; .pth",
           C=2, hidden=[4, 3], kernels=[(3, 3), (3, 3)], wrapper="checkpoint", weights_name="weights.pth"),
    simple("dataparallel", "nn.DataParallel state_dict: keys module.cell_list.*",
           C=2, hidden=[4, 3], kernels=[(3, 3), (3, 3)], wrapper="dataparallel"),
    simple("nested-model", "ConvLSTM inside a bigger model: net.encoder.convlstm.cell_list.* beside "
           "net.encoder.stem (Conv2d), net.encoder.norm (BatchNorm2d), net.head, net.fc",
           C=2, hidden=[4, 3], kernels=[(3, 3), (3, 3)], wrapper="nested"),
    simple("single-cell", "a single ConvLSTMCell saved alone: keys cell.conv.weight/bias, run as 1 layer",
           C=3, hidden=[4], kernels=[(3, 3)], wrapper="single-cell"),
    ("multi-cell-prefix-enc2", multi_cell),
    simple("pickled-module", "whole module pickled with torch.save(model) (classes reference.ConvLSTM, "
           "reference.ConvLSTMCell, ModuleList, Conv2d)",
           C=2, hidden=[4, 3], kernels=[(3, 3), (3, 3)], wrapper="pickled-module"),
    simple("legacy-format", "legacy (pre-zip) serialization, _use_new_zipfile_serialization=False",
           C=2, hidden=[4, 3], kernels=[(3, 3), (3, 3)], legacy=True),
    simple("weights-f16", "float16 weights; expected from PyTorch with the stored weights .float()",
           C=2, hidden=[4, 3], kernels=[(3, 3), (3, 3)], wdtype="f16"),
    simple("weights-f64", "float64 weights (drawn in float64); expected from PyTorch with the stored "
           "weights .float(), i.e. rounded to float32",
           C=2, hidden=[4, 3], kernels=[(3, 3), (3, 3)], wdtype="f64"),
    simple("weights-bf16", "bfloat16 weights; expected from PyTorch with the stored weights .float()",
           C=2, hidden=[4, 3], kernels=[(3, 3), (3, 3)], wdtype="bf16"),
    simple("input-f64", "float64 input.npy; expected uses input.astype(float32)",
           C=2, hidden=[4], kernels=[(3, 3)], idtype="f64"),
    simple("input-f16", "float16 input.npy; expected uses input.astype(float32)",
           C=2, hidden=[4], kernels=[(3, 3)], idtype="f16"),
    simple("input-fortran", "Fortran-order (fortran_order: True) float32 input.npy",
           C=2, hidden=[4, 3], kernels=[(3, 3), (3, 3)], B=2, H=5, W=7, fortran=True),
]


# ---------------------------------------------------------------------------
# Real checkpoints (MIT, licences beside them), shared with fixtures/real/.

REAL_DIR = os.path.join(REPO, "fixtures", "real")
REAL_FILES = ["soccer-ball-convlstm.pth", "soccer-ball-convlstm.LICENSE",
              "moving-mnist-encdec.pt", "moving-mnist-encdec.LICENSE"]


def ensure_real(real_dir):
    """Copy the real checkpoints to fixtures/real/ unless already there."""
    os.makedirs(real_dir, exist_ok=True)
    for f in REAL_FILES:
        dst = os.path.join(real_dir, f)
        src = os.path.join(SHARED_REAL, f)
        if os.path.exists(dst):
            continue
        if not os.path.exists(src):
            raise SystemExit("missing %s and no %s to copy it from" % (dst, src))
        shutil.copyfile(src, dst)
        print("  copied %s -> %s" % (src, dst))


def real_soccer(out_dir, name="real-soccer"):
    path = os.path.join(REAL_DIR, "soccer-ball-convlstm.pth")
    ck = torch.load(path, map_location="cpu")
    ref = model_from_state_dict(ck["model_state_dict"], "conv_lstm")
    assert ref.hidden_dim == [32, 16, 1] and ref.input_dim == 1, describe(ref)
    seed_for(name)
    x = rand_input((1, 2, 1, 16, 16))
    return write_case(out_dir, name, "real checkpoint soccer-ball-convlstm.pth (legacy format, cuda:0 "
                      "storages, checkpoint dict); ConvLSTM found automatically at "
                      "model_state_dict.conv_lstm: input 1, hidden [32,16,1], 3x3, gates ifog; random "
                      "input B=1 T=2 16x16; --all-layers: every layer's h at every step",
                      ["--all-layers"], None, ref, x, all_layers=True,
                      weights_ref="../../real/soccer-ball-convlstm.pth",
                      extra={"prefix_found": "model_state_dict.conv_lstm"})


def real_mnist_enc1(out_dir, name="real-mnist-enc1"):
    path = os.path.join(REAL_DIR, "moving-mnist-encdec.pt")
    sd = torch.load(path, map_location="cpu")
    ref = model_from_state_dict(sd, "enc1")
    assert ref.hidden_dim == [32] and ref.input_dim == 32, describe(ref)
    seed_for(name)
    x = rand_input((1, 3, 32, 8, 8))
    return write_case(out_dir, name, "real checkpoint moving-mnist-encdec.pt, --prefix enc1 (one cell: "
                      "input 32, hidden 32, 5x5, gates ifog) run as a one-layer ConvLSTM; random input "
                      "B=1 T=3 8x8", ["--prefix", "enc1"], None, ref, x,
                      weights_ref="../../real/moving-mnist-encdec.pt")


REAL = [("real-soccer", real_soccer), ("real-mnist-enc1", real_mnist_enc1)]


def this_machine():
    """The CPU and torch that computed the expected tensors: PyTorch's CPU
    kernels pick different code paths (AVX2, AVX-512, ...) and their float32
    results differ in the last bits between machines."""
    model, isa = provenance.cpu()
    return {"cpu": model, "isa": isa, "torch": torch.__version__}


def check_cases(out_dir, names=None, cli=None):
    """Recompute every case from its files alone and compare with
    expected.npz: through reference.py's stand-in for the CLI (weights found
    from case.json's args, not from the writer's in-memory model), or with
    cli (a program prefix, e.g. a built convlstm-run) through that program,
    with the case's tolerance.

    Recomputed by PyTorch on the machine and torch that wrote the case
    (case.json "written_by"), the result must be bit-identical; on another
    CPU or torch, PyTorch's own kernels round differently, so it must agree
    within the case's tolerance, and the largest difference is reported."""
    import subprocess
    import tempfile

    from reference import cli_main

    bad, worst = 0, 0.0
    for name in sorted(os.listdir(out_dir)):
        d = os.path.join(out_dir, name)
        if names and name not in names or not os.path.isfile(os.path.join(d, "case.json")):
            continue
        with open(os.path.join(d, "case.json")) as f:
            case = json.load(f)
        tol = case["tolerance"]
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out.npz")
            argv = ["--weights", os.path.join(d, case["weights"]), "--input", os.path.join(d, case["input"]),
                    "--output", out] + case["args"]
            if "state_in" in case:
                argv += ["--state-in", os.path.join(d, case["state_in"])]
            if cli:
                cmd = shlex.split(cli) + ["run"] + argv
                r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
                if r.returncode:
                    print("  check %-28s FAIL  exit %d: %s" % (name, r.returncode, r.stderr.strip()[-500:]))
                    bad += 1
                    continue
            else:
                cli_main(argv)
            got = dict(np.load(out))
        exp = dict(np.load(os.path.join(d, case["expected"])))
        err, ratio = 0.0, 0.0
        ok = sorted(got) == sorted(exp)
        for k in exp:
            if k in got and got[k].shape == exp[k].shape and got[k].dtype == exp[k].dtype == np.float32:
                diff = np.abs(got[k].astype(np.float64) - exp[k])
                err = max(err, float(diff.max()))
                ratio = max(ratio, float((diff / (tol["abs"] + tol["rel"] * np.abs(exp[k]))).max()))
            else:
                ok = False
        exact = not cli and case.get("written_by") == this_machine()
        ok = ok and ratio <= 1 and (not exact or err == 0)
        bad += not ok
        worst = max(worst, ratio)
        print("  check %-28s %s  max diff %.3g (%.2fx bar, %s)  keys %s" % (
            name, "OK  " if ok else "FAIL", err, ratio, "bit-exact required" if exact else "within tolerance",
            ",".join(sorted(exp))))
    print("worst: %.2fx the bar; %d case(s) failed" % (worst, bad))
    return bad


def main():
    ap = argparse.ArgumentParser(description="Write fixtures/forward/<case>/ for go test.")
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", "forward"))
    ap.add_argument("--only", nargs="*", help="case names to (re)write; default all")
    ap.add_argument("--check", action="store_true",
                    help="write nothing: recompute the existing cases from their files and compare")
    ap.add_argument("--cli", help="with --check: run the cases through this program (e.g. a built "
                    "convlstm-run; 'run ...' is appended) instead of the PyTorch stand-in")
    args = ap.parse_args()
    if args.check:
        torch.set_num_threads(1)
        sys.exit(1 if check_cases(args.out, args.only, args.cli) else 0)
    torch.set_num_threads(1)
    print("command:", command_line())
    print("torch %s, numpy %s -> %s" % (torch.__version__, np.__version__, args.out))
    os.makedirs(args.out, exist_ok=True)
    ensure_real(REAL_DIR)
    cases = SYNTHETIC + REAL
    names = [n for n, _ in cases]
    assert len(set(names)) == len(names)
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            raise SystemExit("unknown case(s): %s" % ", ".join(sorted(unknown)))
    total = 0
    for n, make in cases:
        if args.only and n not in args.only:
            continue
        total += make(args.out)
    print("%d bytes written; checking them from the files:" % total)
    sys.exit(1 if check_cases(args.out, args.only) else 0)


if __name__ == "__main__":
    main()
