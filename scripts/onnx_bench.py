#!/usr/bin/python3
"""convlstm-run's graph interpreter vs ONNX Runtime on the same ONNX files.

Builds a ConvLSTM with PyTorch (scripts/reference.py), exports it twice:
torch.onnx.export (opset 13, the time loop unrolled by tracing) and
`convlstm-run convert` (one Scan graph), then times graph/ (go test
-bench File) and ONNX Runtime (scripts/onnx_ort_run.js, graph optimisation
'all') on each file, one after the other, reporting median wall and CPU
milliseconds per forward pass. CPU time is the steadier figure on a shared
machine.

    /usr/bin/python3 scripts/onnx_bench.py [--shape 1,10,4,64,64] [--hidden 32,32]
        [--kernel 3] [--threads 1] [--runs 5] [--bin convlstm-run]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from reference import ConvLSTM  # noqa: E402
from onnx_make_fixtures import Wrap  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="1,10,4,64,64", help="B,T,C,H,W")
    ap.add_argument("--hidden", default="32,32", help="hidden channels per layer")
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=None, help="convlstm-run binary (default: go build it)")
    args = ap.parse_args()
    B, T, C, H, W = map(int, args.shape.split(","))
    hidden = [int(h) for h in args.hidden.split(",")]
    work = tempfile.mkdtemp(prefix="onnx_bench_")
    binary = args.bin or os.path.join(work, "convlstm-run")
    if not args.bin:
        subprocess.run(["go", "build", "-o", binary, "./cmd/convlstm-run"], cwd=ROOT, check=True)
    torch.manual_seed(0)
    m = ConvLSTM(C, hidden, args.kernel, len(hidden), batch_first=True, return_all_layers=True).eval()
    x = torch.randn(B, T, C, H, W)
    pt = os.path.join(work, "m.pt")
    torch.save(m.state_dict(), pt)
    np.save(os.path.join(work, "x.npy"), x.numpy())
    x.numpy().tofile(os.path.join(work, "x.bin"))
    files = {"torch-export (unrolled)": os.path.join(work, "torch.onnx"),
             "convlstm-run convert (Scan)": os.path.join(work, "ours.onnx")}
    with torch.no_grad():
        torch.onnx.export(Wrap(m), (x,), files["torch-export (unrolled)"], opset_version=13,
                          input_names=["input"], output_names=["output", "h_0", "c_0", "h_1", "c_1"][:1 + 2 * len(hidden)])
    subprocess.run([binary, "convert", "--weights", pt, "--output", files["convlstm-run convert (Scan)"]],
                   check=True, capture_output=True)
    print("model: input %s, hidden %s, kernel %d; threads %d; %d runs (medians)" % (
        (B, T, C, H, W), hidden, args.kernel, args.threads, args.runs))
    for label, f in files.items():
        job = os.path.join(work, "job.json")
        with open(job, "w") as fh:
            json.dump({"model": f, "threads": args.threads, "runs": [{
                "inputs": {"input": {"file": os.path.join(work, "x.bin"), "shape": [B, T, C, H, W]}},
                "out_prefix": os.path.join(work, "ort_"), "repeat": args.runs + 1}]}, fh)
        env = dict(os.environ, NODE_PATH=os.path.join(HERE, "node_modules"))
        r = json.loads(subprocess.run(["node", os.path.join(HERE, "onnx_ort_run.js"), job], env=env,
                                      check=True, capture_output=True, text=True).stdout)
        ort_wall, ort_cpu = statistics.median(r["times_ms"][1:]), statistics.median(r["cpu_ms"][1:])
        env = dict(os.environ, GRAPH_BENCH_ONNX=f, GRAPH_BENCH_INPUT=os.path.join(work, "x.npy"),
                   GRAPH_BENCH_THREADS=str(args.threads))
        out = subprocess.run(["go", "test", "./graph", "-run", "^$", "-bench", "File", "-count", "1",
                              "-benchtime", "%dx" % args.runs, "-cpu", str(max(args.threads, 1))],
                             cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
        mm = re.search(r"([\d.]+) ns/op\s+([\d.]+) cpu-ms/op", out)
        go_wall, go_cpu = float(mm.group(1)) / 1e6, float(mm.group(2))
        print("%-28s ORT %8.1f ms wall %8.1f ms CPU | graph/ %8.1f ms wall %8.1f ms CPU | CPU ratio go/ORT %.2f" % (
            label, ort_wall, ort_cpu, go_wall, go_cpu, go_cpu / ort_cpu))


if __name__ == "__main__":
    main()
