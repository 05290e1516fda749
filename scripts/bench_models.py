#!/usr/bin/python3
"""Time whole video-prediction models (issue 8) in PyTorch, ONNX Runtime and
convlstm-go, side by side, at realistic sizes.

    /usr/bin/python3 scripts/bench_models.py compare [--rows mnist-real,...] [--threads 1,2]
        [--rounds 3] [--runs 5] [--warmup 1] [--dir DIR] [--go BIN] [--cpu] [--json OUT.jsonl]
    /usr/bin/python3 scripts/bench_models.py export --dir DIR [--rows ...]
    /usr/bin/python3 scripts/bench_models.py time --dir DIR --row ROW --threads N [--runs 5] [--warmup 1]

`export` writes DIR/<row>.onnx (torch.onnx.export, opset 17, static shapes;
the scripted roll-out through torch.jit.script) and DIR/rows.json, the
format scripts/bench_ort.js reads ({row: {"onnx", "inputs": {name: shape}}})
plus, for the Go side, "go_shape" (the --shape argument of convlstm-run
bench: the graph input's shape, comma-separated). Models are built by
scripts/whole_models.py (the real one from its weights) and never committed;
DIR defaults to ~/.cache/convlstm-bench/models-<torch>-<hash of the model code and rows>.

`time` times PyTorch's eager forward (torch.inference_mode, N intra-op
threads, 1 inter-op thread) and prints one JSON line like bench_torch.py:
{"engine": "pytorch", "row", "threads", "median_ms", "min_ms", "max_ms",
"times_ms", "cpu_ms" (median process CPU time per run), "shape", "weights"}.

`compare` exports (cached), then for each of --rounds rounds, each row and
each thread count runs every engine once, one after the other in an order
that rotates from round to round (so all see the same machine load); each
run is --warmup warm-up calls then the median of --runs timed calls. It
prints every measurement as a JSON line (stdout, or --json FILE) and then a
markdown table of the median over rounds. Engines: PyTorch (this script's
`time`), ONNX Runtime (scripts/bench_ort.js: onnxruntime-node 1.30.0,
intraOpNumThreads N, interOpNumThreads 1, graphOptimizationLevel all), and,
with --go BIN, convlstm-go:

    BIN bench --weights DIR/<row>.onnx --shape <go_shape> --threads N
        --runs R --warmup W --json

(its JSON report: median_ms, times_ms, ...). The table gives each engine's
wall-clock median and the speed-up of convlstm-go over the faster of the
two anchors (faster's ms / convlstm-go's ms: 1.5x is issue 8's goal).
--go may be repeated as LABEL=BIN (e.g. --go before=/tmp/old --go
after=./convlstm-run) to time several builds side by side in the same
rounds: each gets its own columns.

--cpu adds CPU time per run, steadier than wall time on a shared machine
(the 2-core machine this project runs on usually has a load of 5 to 15):
PyTorch and ONNX Runtime report the process CPU time of each timed run
(median); for convlstm-go, whose report has no CPU field, the script runs
the bench a second time with --runs 1 and takes the difference of the two
processes' CPU times (getrusage of the child) over R - 1: loading,
compiling and warming up cancel out. The table then also gives CPU ms and
the speed-up in CPU time.

Inputs: random normal values (PyTorch: fixed seed; ONNX Runtime: bench_ort.js's
fixed-seed generator; convlstm-go: bench's own); the cost of these models does
not depend on the values.
"""

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import whole_models as wm  # noqa: E402

ORT_VERSION = "1.30.0"

# row -> (architecture, config, input shape, description)
ROWS = {
    "mnist-real": ("moving-mnist", None, (1, 10, 64, 64),
                   "the real Moving-MNIST model (4 cells 32->32 5x5 at 64x64, 20+20+10+10 cell steps)"),
    "openstl-mmnist": ("openstl", dict(C=1, H=64, W=64, patch=4, hidden=(64, 64), k=5, t_in=10, t_out=10,
                                       forget_bias=1.0),
                       (1, 10, 1, 64, 64),
                       "OpenSTL ConvLSTM, Moving-MNIST setting (4x4 patches -> 16x16x16, 2 cells of 64, 5x5, "
                       "LayerNorm), 10 in, 10 out"),
    "encfc-radar": ("encfc", dict(C=1, ch=(16, 32), hid=(32, 64), groups=4, t_out=5),
                    (1, 5, 1, 128, 128),
                    "GroupNorm encoder-forecaster, radar-like 128x128, cells at 64x64 (32) and 32x32 (64), "
                    "5 in, 5 out"),
    "unet-64": ("unet", dict(C=1, base=16, hid=64), (1, 10, 1, 64, 64),
                "U-Net (16/32/64 channels, bilinear Resize) with a 64-channel ConvLSTM at 16x16, 10 frames"),
    "peephole-64": ("peephole", dict(H=64, W=64, ch=16, hidden=(32, 32), k=3), (1, 10, 64, 64),
                    "peephole ConvLSTM, 2 cells of 32 at 64x64, 10 frames"),
    "rollout-loop": ("rollout", dict(C=1, hidden=(16, 16), k=3, t_out=10), (1, 10, 1, 64, 64),
                     "scripted roll-out (ONNX Loop + If), 2 cells of 16 at 64x64, 10 in, 10 out"),
}


def default_dir():
    # What the exported models depend on: the model code and the rows.
    h = hashlib.sha256()
    with open(os.path.join(HERE, "whole_models.py"), "rb") as fh:
        h.update(fh.read())
    h.update(repr(sorted(ROWS.items())).encode())
    cache = os.environ.get("CONVLSTM_BENCH_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "convlstm-bench"))
    return os.path.join(cache, "models-%s-%s" % (torch.__version__, h.hexdigest()[:12]))


def build_row(row):
    arch, cfg, _, _ = ROWS[row]
    return wm.load_real() if arch == "moving-mnist" else wm.build(arch, cfg)


def make_input(row):
    g = torch.Generator().manual_seed(1234)
    return torch.randn(ROWS[row][2], generator=g)


def cmd_export(a):
    rows = a.rows.split(",") if a.rows else list(ROWS)
    os.makedirs(a.dir, exist_ok=True)
    info_path = os.path.join(a.dir, "rows.json")
    info = {}
    if os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
    todo = [r for r in rows if r not in info or not os.path.exists(info[r]["onnx"])]
    for row in todo:
        if row not in ROWS:
            sys.exit("unknown row %r (rows: %s)" % (row, ", ".join(ROWS)))
        arch, cfg, shape, desc = ROWS[row]
        model = build_row(row)
        m = torch.jit.script(model) if arch == "rollout" else model
        path = os.path.join(a.dir, row + ".onnx")
        # The scripted roll-out's output shape comes out of the Loop, and
        # onnxruntime-node 1.30.0 refuses to run that graph when its input
        # is static ("pre-allocated output OrtValues on a model with
        # dynamic output shapes"): export it with dynamic axes, as the
        # fixtures do.
        dyn = None
        if arch == "rollout":
            dims = {0: "batch", 1: "time", 3: "height", 4: "width"}
            dyn = {"frames": dims, "prediction": dims}
        with torch.no_grad():
            torch.onnx.export(m, (make_input(row),), path, opset_version=17, input_names=["frames"],
                              output_names=["prediction"], dynamic_axes=dyn)
        info[row] = {"architecture": arch, "config": cfg, "description": desc, "onnx": path,
                     "inputs": {"frames": list(shape)}, "go_shape": ",".join(map(str, shape)),
                     "params": sum(p.numel() for p in model.parameters())}
        print("exported %s (%s) to %s" % (row, desc, path), file=sys.stderr)
    tmp = info_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1)
    os.replace(tmp, info_path)


def cmd_time(a):
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    model = build_row(a.row)
    x = make_input(a.row)
    times, cpu = [], []
    with torch.inference_mode():
        for _ in range(a.warmup):
            model(x)
        for _ in range(a.runs):
            c0, t0 = time.process_time(), time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
    print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "row": a.row,
                      "threads": torch.get_num_threads(), "median_ms": statistics.median(times),
                      "min_ms": min(times), "max_ms": max(times), "times_ms": times,
                      "cpu_ms": statistics.median(cpu), "shape": list(ROWS[a.row][2]), "weights": os.path.join(a.dir, a.row + ".onnx")}))


def ensure_ort():
    env = dict(os.environ, NODE_PATH=os.path.join(HERE, "node_modules"))
    if subprocess.run(["node", "-e", "require('onnxruntime-node')"], cwd=HERE, env=env,
                      capture_output=True).returncode == 0:
        return env
    print("installing onnxruntime-node@%s from npm (--ignore-scripts)" % ORT_VERSION, file=sys.stderr)
    subprocess.run(["npm", "install", "--no-save", "--no-package-lock", "--ignore-scripts",
                    "--prefix", HERE, "onnxruntime-node@" + ORT_VERSION], check=True,
                   stdout=sys.stderr)
    return env


def child_cpu_ms():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1e3


def run_cmd(cmd, env):
    """Runs cmd; its last JSON object on stdout (one line, or the whole
    indented output), the stderr tail on failure, and its CPU time (ms)."""
    c0 = child_cpu_ms()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    cpu = child_cpu_ms() - c0
    if r.returncode != 0:
        return None, (r.stderr.strip() or r.stdout.strip())[-400:], cpu
    out = r.stdout.strip()
    for text in [out] + out.splitlines()[::-1]:
        try:
            rep = json.loads(text)
            if isinstance(rep, dict):
                return rep, "", cpu
        except ValueError:
            continue
    return None, "no JSON in output: " + out[-400:], cpu


def run_engine(engine, a, row, threads, info, env):
    runs, warmup = str(a.runs), str(a.warmup)
    if engine == "pytorch":
        cmd = ["nice", sys.executable, os.path.join(HERE, "bench_models.py"), "time", "--dir", a.dir, "--row", row,
               "--threads", str(threads), "--runs", runs, "--warmup", warmup]
    elif engine == "onnxruntime":
        cmd = ["nice", "node", os.path.join(HERE, "bench_ort.js"), "--dir", a.dir, "--row", row,
               "--threads", str(threads), "--runs", runs, "--warmup", warmup]
    else:  # convlstm-go, or convlstm-go:LABEL
        cmd = ["nice", a.gobins[engine], "bench", "--weights", info[row]["onnx"], "--shape", info[row]["go_shape"],
               "--threads", str(threads), "--runs", runs, "--warmup", warmup, "--json"]
    rep, err, cpu = run_cmd(cmd, env)
    if rep is None or not engine.startswith("convlstm-go") or not a.cpu or "cpu_ms" in rep:
        return rep, err
    # convlstm-go's CPU time per run: this process's CPU time less that of a
    # run of the same bench with --runs 1, over the difference in runs.
    i = cmd.index("--runs")
    one = cmd[:i + 1] + ["1"] + cmd[i + 2:]
    rep1, err1, cpu1 = run_cmd(one, env)
    if rep1 is not None and a.runs > 1:
        rep["cpu_ms"] = max(0.0, (cpu - cpu1) / (a.runs - 1))
    return rep, err


def cmd_compare(a):
    rows = a.rows.split(",") if a.rows else list(ROWS)
    threads = [int(t) for t in a.threads.split(",")]
    a.rows = ",".join(rows)
    cmd_export(a)
    with open(os.path.join(a.dir, "rows.json")) as f:
        info = json.load(f)
    env = ensure_ort()
    a.gobins = {}
    for spec in a.go or []:
        label, _, path = spec.rpartition("=")
        a.gobins["convlstm-go" + (":" + label if label else "")] = path
    gos = list(a.gobins)
    engines = ["pytorch", "onnxruntime"] + gos
    out = open(a.json, "w") if a.json else sys.stdout
    cpu_name = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu_name = line.split(":", 1)[1].strip()
                break
    load0 = open("/proc/loadavg").read().split()[:3]
    res, cpu = {}, {}
    for rnd in range(a.rounds):
        cell = 0
        for row in rows:
            for t in threads:
                for k in range(len(engines)):
                    engine = engines[(k + rnd + cell) % len(engines)]
                    rep, err = run_engine(engine, a, row, t, info, env)
                    ms = rep["median_ms"] if rep else None
                    res.setdefault((row, t, engine), []).append(ms)
                    cpu.setdefault((row, t, engine), []).append(rep.get("cpu_ms") if rep else None)
                    line = {"round": rnd + 1, "row": row, "threads": t, "engine": engine, "median_ms": ms,
                            "shape": info[row]["go_shape"], "weights": info[row]["onnx"]}
                    if rep:
                        line["times_ms"] = rep.get("times_ms")
                        if rep.get("cpu_ms") is not None:
                            line["cpu_ms"] = rep["cpu_ms"]
                    else:
                        line["error"] = err
                    print(json.dumps(line), file=out, flush=True)
                    print("round %d/%d  %-15s threads=%d  %-12s %s%s" % (
                        rnd + 1, a.rounds, row, t, engine, "%.1f ms" % ms if ms else "FAILED: " + err,
                        " (CPU %.1f ms)" % rep["cpu_ms"] if rep and rep.get("cpu_ms") is not None else ""),
                        file=sys.stderr, flush=True)
                cell += 1
    if a.json:
        out.close()
    load1 = open("/proc/loadavg").read().split()[:3]

    def med(v):
        return None if not v or any(x is None for x in v) else statistics.median(v)

    def f(x):
        return "n/a" if x is None else ("%.1f" % x if x >= 10 else "%.2f" % x)

    def speedup(anchors, go):
        anchors = [x for x in anchors if x is not None]
        return "n/a" if go is None or not anchors else "%.2fx" % (min(anchors) / go)

    flags = [fl for fl in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16")
             if fl in cpuflags()]
    print("\n## Whole models: PyTorch vs ONNX Runtime%s\n" % (" vs convlstm-go" if gos else ""))
    print("- CPU: %s (%d cores; flags %s); load average %s at start, %s at end; the machine was shared" % (
        cpu_name, os.cpu_count(), " ".join(flags), " ".join(load0), " ".join(load1)))
    print("- PyTorch %s (eager, inference_mode), ONNX Runtime %s (onnxruntime-node, CPU EP, opset-17 export)%s" % (
        torch.__version__, ORT_VERSION, "".join(", %s: %s" % (g, a.gobins[g]) for g in gos)))
    print("- each cell: median over %d round(s) of [%d warm-up + median of %d runs], engines interleaved" % (
        a.rounds, a.warmup, a.runs))
    if gos:
        print("- speed-up: the faster anchor's time / convlstm-go's (issue 8's goal: 1.5x)")
    if a.cpu:
        print("- CPU ms: process CPU time per run (convlstm-go: from two runs of its bench, see --cpu)")
    print()
    head = "| row | input | threads | PyTorch ms | ORT ms | ORT/PyTorch |"
    sep = "|---|---|---:|---:|---:|---:|"
    for g in gos:
        head += " %s ms | speed-up |" % g
        sep += "---:|---:|"
    if a.cpu:
        head += " PyTorch CPU ms | ORT CPU ms |" + "".join(" %s CPU ms | CPU speed-up |" % g for g in gos)
        sep += "---:|---:|" + "---:|---:|" * len(gos)
    print(head)
    print(sep)
    for row in rows:
        for t in threads:
            pt, ort = med(res[(row, t, "pytorch")]), med(res[(row, t, "onnxruntime")])
            ratio = "n/a" if pt is None or ort is None else "%.2f" % (ort / pt)
            line = "| %s | %s | %d | %s | %s | %s |" % (row, info[row]["go_shape"], t, f(pt), f(ort), ratio)
            for g in gos:
                go = med(res[(row, t, g)])
                line += " %s | %s |" % (f(go), speedup((pt, ort), go))
            if a.cpu:
                cpt, cort = med(cpu[(row, t, "pytorch")]), med(cpu[(row, t, "onnxruntime")])
                line += " %s | %s |" % (f(cpt), f(cort))
                for g in gos:
                    cgo = med(cpu[(row, t, g)])
                    line += " %s | %s |" % (f(cgo), speedup((cpt, cort), cgo))
            print(line)
    print()
    for row in rows:
        print("- %s: %s" % (row, ROWS[row][3]))


def cpuflags():
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--dir", default=None)
    e.add_argument("--rows", default="")
    t = sub.add_parser("time")
    t.add_argument("--dir", default=None)
    t.add_argument("--row", required=True, choices=list(ROWS))
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--runs", type=int, default=5)
    t.add_argument("--warmup", type=int, default=1)
    c = sub.add_parser("compare")
    c.add_argument("--dir", default=None)
    c.add_argument("--rows", default="")
    c.add_argument("--threads", default="1,2")
    c.add_argument("--rounds", type=int, default=3)
    c.add_argument("--runs", type=int, default=5)
    c.add_argument("--warmup", type=int, default=1)
    c.add_argument("--go", action="append", help="convlstm-run binary, or LABEL=BIN (repeatable): adds a convlstm-go column")
    c.add_argument("--cpu", action="store_true", help="also CPU time per run (convlstm-go: two bench runs each)")
    c.add_argument("--json", default=None, help="write the JSON lines here instead of stdout")
    a = ap.parse_args()
    if a.dir is None:
        a.dir = default_dir()
    {"export": cmd_export, "time": cmd_time, "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    main()
