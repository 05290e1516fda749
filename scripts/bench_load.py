#!/usr/bin/python3
"""Loading speed: convlstm-go's loader.LoadPT against torch.load on the same
100 MB float32 state_dict (a 4-layer ConvLSTM, 3x3, hidden 384), side by
side in one run.

    /usr/bin/python3 scripts/bench_load.py [--mb 100] [--runs 5]

Prints the median time of each and the ratio, and the Go loader's bytes
allocated per load relative to the file size (target: at most 1.3x).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from reference import ConvLSTM  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--legacy", action="store_true", help="legacy (non-zip) format")
    args = ap.parse_args()
    torch.manual_seed(0)
    m = ConvLSTM(64, [384, 384, 384, 128], (3, 3), 4)
    work = tempfile.mkdtemp(prefix="bench_load_")
    path = os.path.join(work, "big.pt")
    torch.save(m.state_dict(), path, _use_new_zipfile_serialization=not args.legacy)
    size = os.path.getsize(path)
    print("file: %.1f MB %s state_dict, torch %s" % (size / 1e6, "legacy" if args.legacy else "zip", torch.__version__))
    torch.load(path)  # warm the page cache
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        torch.load(path)
        times.append((time.perf_counter() - t0) * 1e3)
    torch_ms = statistics.median(times)
    res = subprocess.run(["go", "test", "-run", "xxx", "-bench", "LoadPTFile", "-benchtime", "%dx" % args.runs,
                          "-count", "1", "./loader"], cwd=os.path.dirname(HERE), capture_output=True, text=True,
                         env=dict(os.environ, CONVLSTM_LOAD_FILE=path))
    line = next((l for l in res.stdout.splitlines() if l.startswith("BenchmarkLoadPTFile")), None)
    if line is None:
        print(res.stdout, res.stderr)
        sys.exit(1)
    ns = float(re.search(r"([\d.]+) ns/op", line).group(1))
    alloc = float(re.search(r"(\d+) B/op", line).group(1))
    go_ms = ns / 1e6
    print("torch.load        median %.1f ms (%d runs)" % (torch_ms, args.runs))
    print("loader.LoadPT     mean   %.1f ms (%d runs), allocates %.2fx the file size" % (go_ms, args.runs, alloc / size))
    print("ratio torch/go    %.2fx" % (torch_ms / go_ms))
    os.remove(path)
    os.rmdir(work)


if __name__ == "__main__":
    main()
