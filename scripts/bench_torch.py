#!/usr/bin/python3
"""PyTorch side of scripts/bench_compare.sh: builds the benchmark models and
times PyTorch's forward pass.

    /usr/bin/python3 scripts/bench_torch.py export --out DIR [--rows mnist,radar,...]
        writes DIR/<model>.pt (state_dict, for convlstm-go) and
        DIR/<row>.onnx (static shapes, for ONNX Runtime) for every row, and
        DIR/rows.json describing them.

    /usr/bin/python3 scripts/bench_torch.py time --dir DIR --row ROW --threads N
        [--runs 5] [--warmup 1]
        prints one JSON line: {"median_ms", "min_ms", "max_ms", "times_ms"}.

Models are scripts/reference.py's ConvLSTM with PyTorch's default init under a
fixed seed (batch_first=True, bias=True).  The "stream" row is one time step
from a random non-zero (h, c) for every layer; its ONNX graph takes the
initial states as inputs (x, h0, c0, h1, c1).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from reference import ConvLSTM  # noqa: E402

# model name -> (input_dim, hidden list, kernel list, seed)
MODELS = {
    "mnist": (1, [64, 64], [(3, 3), (3, 3)], 0),
    "radar": (1, [32, 64], [(5, 5), (3, 3)], 1),
}

# row -> (model, shape B,T,C,H,W, random initial state?)
ROWS = {
    "mnist": ("mnist", (1, 10, 1, 64, 64), False),
    "mnist-b8": ("mnist", (8, 10, 1, 64, 64), False),
    "radar": ("radar", (1, 12, 1, 128, 128), False),
    "stream": ("mnist", (1, 1, 1, 64, 64), True),
}

INPUT_SEED = 1234


def build_model(name):
    input_dim, hidden, kernels, seed = MODELS[name]
    torch.manual_seed(seed)
    m = ConvLSTM(input_dim, hidden, kernels, len(hidden), batch_first=True, bias=True)
    return m.float().eval()


class SeqWrapper(nn.Module):
    """x -> (last layer's output sequence, last layer's final h, c)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        outs, states = self.model(x)
        return outs[-1], states[-1][0], states[-1][1]


class StreamWrapper(nn.Module):
    """(x, h0, c0, h1, c1) -> (output, h0', c0', h1', c1'): one streaming step
    of a two-layer model from a carried state."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, h0, c0, h1, c1):
        self.model.return_all_layers = True
        outs, states = self.model(x, [(h0, c0), (h1, c1)])
        return outs[-1], states[0][0], states[0][1], states[1][0], states[1][1]


def make_inputs(row):
    """The row's inputs (same values in every engine that reads them here)."""
    model_name, shape, random_state = ROWS[row]
    B, T, C, H, W = shape
    g = torch.Generator().manual_seed(INPUT_SEED)
    x = torch.randn(*shape, generator=g)
    if not random_state:
        return [x]
    hidden = MODELS[model_name][1]
    ins = [x]
    for hd in hidden:
        ins.append(torch.randn(B, hd, H, W, generator=g))
        ins.append(torch.randn(B, hd, H, W, generator=g))
    return ins


def wrap(row, model):
    return StreamWrapper(model) if ROWS[row][2] else SeqWrapper(model)


def cmd_export(a):
    rows = a.rows.split(",") if a.rows else list(ROWS)
    os.makedirs(a.out, exist_ok=True)
    info_path = os.path.join(a.out, "rows.json")
    info = {}
    if os.path.exists(info_path):  # a cache from an earlier run: add to it
        with open(info_path) as f:
            info = json.load(f)
    done_models = set()
    todo = [r for r in rows if r not in info or not os.path.exists(info[r]["onnx"])]
    for row in todo:
        if row not in ROWS:
            sys.exit("unknown row %r (rows: %s)" % (row, ", ".join(ROWS)))
        model_name, shape, random_state = ROWS[row]
        model = build_model(model_name)
        if model_name not in done_models:
            torch.save(model.state_dict(), os.path.join(a.out, model_name + ".pt"))
            done_models.add(model_name)
        w = wrap(row, model).eval()
        ins = make_inputs(row)
        if random_state:
            in_names = ["x", "h0", "c0", "h1", "c1"]
            out_names = ["output", "h0_out", "c0_out", "h1_out", "c1_out"]
        else:
            in_names = ["x"]
            out_names = ["output", "h_out", "c_out"]
        onnx_path = os.path.join(a.out, row + ".onnx")
        with torch.no_grad():
            torch.onnx.export(w, tuple(ins), onnx_path, opset_version=a.opset,
                              input_names=in_names, output_names=out_names,
                              do_constant_folding=True)
        info[row] = {
            "model": model_name,
            "weights": os.path.join(a.out, model_name + ".pt"),
            "onnx": onnx_path,
            "shape": list(shape),
            "random_state": random_state,
            "inputs": {n: list(t.shape) for n, t in zip(in_names, ins)},
        }
    tmp = info_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1)
    os.replace(tmp, info_path)
    if todo:
        print("exported %s to %s (torch %s, opset %d)" % (",".join(todo), a.out, torch.__version__, a.opset))


def cmd_time(a):
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    model_name = ROWS[a.row][0]
    model = build_model(model_name)
    model.load_state_dict(torch.load(os.path.join(a.dir, model_name + ".pt"), map_location="cpu"))
    w = wrap(a.row, model).eval()
    ins = make_inputs(a.row)
    times = []
    with torch.inference_mode():
        for _ in range(a.warmup):
            w(*ins)
        for _ in range(a.runs):
            t0 = time.perf_counter()
            w(*ins)
            times.append((time.perf_counter() - t0) * 1e3)
    s = sorted(times)
    n = len(s)
    med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "row": a.row,
                      "threads": torch.get_num_threads(), "median_ms": med, "min_ms": s[0],
                      "max_ms": s[-1], "times_ms": times}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--out", required=True)
    e.add_argument("--rows", default="")
    e.add_argument("--opset", type=int, default=17)
    t = sub.add_parser("time")
    t.add_argument("--dir", required=True)
    t.add_argument("--row", required=True, choices=list(ROWS))
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--runs", type=int, default=5)
    t.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    if a.cmd == "export":
        cmd_export(a)
    else:
        cmd_time(a)


if __name__ == "__main__":
    main()
