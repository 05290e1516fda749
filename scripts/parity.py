#!/usr/bin/python3
"""Live parity: random ConvLSTM configurations, PyTorch (in-process) vs convlstm-run.

    /usr/bin/python3 scripts/parity.py [--n 30] [--seed S] [--only I ...] [--cli CMD] [--keep]

The seed (random unless given) is printed first; configuration i depends only
on (seed, i), so `--seed S --only I` replays one configuration.

For each configuration the script writes weights / input / optional state to a
temp folder, runs the reference (scripts/reference.py, float32) and
`convlstm-run run ...`, and compares every tensor of the CLI's OUT.npz
(output, h_l, c_l, output_l with --all-layers) elementwise against

    |go - ref| <= 1e-5 + 1e-5 * |ref|

It prints one line per configuration: the configuration, the worst absolute
error and the tensor it is in, PyTorch's own float32 rounding noise for scale
("noise": max |torch_f32 - torch_f64| on the same data), OK/FAIL; at the end
the worst error over all configurations and the seed.  Exit status 1 if any
configuration fails or the CLI errors.

Weights use PyTorch's default init (module as constructed), stored as
float32/float64/float16/bfloat16; the reference runs the stored values
converted back to float32 (`.float()`), i.e. exactly what the file holds.

By default the CLI is built from this checkout with
`go build -o <tmp>/convlstm-run ./cmd/convlstm-run` (--tags T adds -tags T,
e.g. purego for the portable kernels); --cli CMD uses another
program prefix instead (`run ...` is appended), e.g.
--cli "/usr/bin/python3 scripts/reference.py" (the PyTorch stand-in).
"""

import argparse
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import WRAPPERS, make_model, rand_input, rand_state, save_npz  # noqa: E402
from reference import ConvLSTMCell, model_from_state_dict, reference_outputs  # noqa: E402

REPO = os.path.dirname(HERE)
ATOL = RTOL = 1e-5
KERNELS = [1, 3, 5, 7]
MAC_BUDGET = 3e8  # per configuration (rejects ~0.3% of draws); keeps --n 40 well under a minute
CLI_TIMEOUT = 120


def sample_config(seed, i):
    rng = random.Random("%s:%d" % (seed, i))
    for _ in range(1000):
        L = rng.randint(1, 4)
        # A third of the draws are wide models with kernel sides of 3 or 5:
        # 16+ hidden channels run as Winograd F(2x2,3x3) (5-wide sides as
        # 3x3 blocks) in the Go runtime, which must meet the bar too.
        wide = rng.random() < 1 / 3
        chans = (lambda: rng.randint(16, 48)) if wide else (lambda: rng.randint(1, 16))
        kern = (lambda: (rng.choice([3, 5]), rng.choice([3, 5]))) if wide else (lambda: (rng.choice(KERNELS), rng.choice(KERNELS)))
        cfg = dict(
            layers=L,
            C=chans(),
            hidden=[chans() for _ in range(L)],
            kernels=[kern() for _ in range(L)],
            H=rng.randint(1, 20), W=rng.randint(1, 20),
            B=rng.randint(1, 3), T=rng.randint(1, 10 if wide else 6),
        )
        ins = [cfg["C"]] + cfg["hidden"][:-1]
        macs = sum(cfg["B"] * cfg["T"] * cfg["H"] * cfg["W"] * 4 * h * (c + h) * kh * kw
                   for c, h, (kh, kw) in zip(ins, cfg["hidden"], cfg["kernels"]))
        if macs <= MAC_BUDGET:
            break
    wrappers = ["bare", "checkpoint", "dataparallel", "nested", "pickled-module"]
    if L == 1:
        wrappers += ["single-cell", "multi-cell", "cell-state-dict", "pickled-cell"]
    gates = list("ifog")
    rng.shuffle(gates)
    cfg.update(
        macs=macs,
        wdtype=rng.choice(["f32", "f64", "f16", "bf16"]),
        fmt=rng.choice(["zip", "legacy"]),
        wrapper=rng.choice(wrappers),
        explicit_prefix=rng.random() < 0.5,
        gates="".join(gates),
        explicit_gates=rng.random() < 0.5,  # pass --gates ifog explicitly sometimes
        bias=rng.random() < 0.7,
        time_first=rng.random() < 0.5,
        state=rng.random() < 0.5,
        idtype=rng.choice(["f32", "f64", "f16"]),
        fortran=rng.random() < 0.5,
        all_layers=rng.random() < 0.5,
        threads=rng.choice([1, 2]),
        torch_seed=rng.randrange(2 ** 31),
    )
    return cfg


def summary(c):
    return ("L=%d C=%d hid=%s k=%s B=%d T=%d %dx%d w=%s/%s %s%s gates=%s%s tf=%d st=%d in=%s/%s all=%d thr=%d"
            % (c["layers"], c["C"], ",".join(map(str, c["hidden"])),
               ",".join("%dx%d" % k for k in c["kernels"]), c["B"], c["T"], c["H"], c["W"],
               c["wdtype"], c["fmt"], c["wrapper"], "+prefix" if c.get("prefix") else "",
               c["gates"], "" if c["bias"] else " nobias", c["time_first"], c["state"], c["idtype"],
               "F" if c["fortran"] else "C", c["all_layers"], c["threads"]))


def multi_cell_dict(stored, rng):
    """Three single cells of different shapes; the one under test sits at a
    random position with a random name, and is picked with --prefix."""
    cell = stored.cell_list[0]
    names = rng.sample(["enc1", "enc2", "dec1", "dec2", "rnn"], 3)
    sd = {}
    for j, name in enumerate(names):
        c = cell if j == 0 else ConvLSTMCell(cell.input_dim + j, cell.hidden_dim + j, (3, 3)).to(
            cell.conv.weight.dtype)
        for k, v in c.state_dict().items():
            sd[name + "." + k] = v
    order = list(sd.items())
    rng.shuffle(order)
    return dict(order), names[0]


PREFIX = {"checkpoint": "model_state_dict", "dataparallel": "module", "nested": "net.encoder.convlstm",
          "single-cell": "cell"}


def write_case(cfg, d):
    """Write the files of one configuration; returns (float32 reference model, x, state, cli args)."""
    torch.manual_seed(cfg["torch_seed"])
    rng = random.Random(cfg["torch_seed"])
    stored, ref = make_model(cfg["C"], cfg["hidden"], cfg["kernels"], bias=cfg["bias"], gates=cfg["gates"],
                             wdtype=cfg["wdtype"])
    args = []
    if cfg["wrapper"] == "multi-cell":
        obj, prefix = multi_cell_dict(stored, rng)
        ref = model_from_state_dict(obj, prefix, gates=cfg["gates"])
        cfg["prefix"] = prefix
    else:
        obj = WRAPPERS[cfg["wrapper"]](stored)
        prefix = PREFIX.get(cfg["wrapper"]) if cfg["explicit_prefix"] else None
        cfg["prefix"] = prefix
    if cfg["prefix"]:
        args += ["--prefix", cfg["prefix"]]
    weights = os.path.join(d, "weights.pth" if cfg["wrapper"] == "checkpoint" else "weights.pt")
    torch.save(obj, weights, _use_new_zipfile_serialization=(cfg["fmt"] == "zip"))

    B, T, C, H, W = cfg["B"], cfg["T"], cfg["C"], cfg["H"], cfg["W"]
    x = rand_input((T, B, C, H, W) if cfg["time_first"] else (B, T, C, H, W), cfg["idtype"], cfg["fortran"])
    np.save(os.path.join(d, "input.npy"), x)
    state = rand_state(ref, B, H, W) if cfg["state"] else None
    files = ["--weights", weights, "--input", os.path.join(d, "input.npy"), "--output", os.path.join(d, "out.npz")]
    if state is not None:
        save_npz(os.path.join(d, "state_in.npz"), state)
        files += ["--state-in", os.path.join(d, "state_in.npz")]
    if cfg["gates"] != "ifog" or cfg["explicit_gates"]:
        args += ["--gates", cfg["gates"]]
    if cfg["time_first"]:
        args += ["--time-first"]
    if cfg["all_layers"]:
        args += ["--all-layers"]
    args += ["--threads", str(cfg["threads"])]
    return ref, x, state, files + args


def compare(got, exp):
    """(ok, worst abs err, tensor of it, max err/bar ratio, problems)."""
    problems = []
    worst, worst_name, ratio = 0.0, "-", 0.0
    for k, ref in exp.items():
        if k not in got:
            problems.append("missing %s" % k)
            continue
        g = got[k]
        if g.shape != ref.shape:
            problems.append("%s shape %s, want %s" % (k, g.shape, ref.shape))
            continue
        g64, r64 = g.astype(np.float64), ref.astype(np.float64)
        if not np.all(np.isfinite(g64)):
            problems.append("%s has non-finite values" % k)
            continue
        if g.size == 0:
            continue
        d = np.abs(g64 - r64)
        e = float(d.max())
        r = float((d / (ATOL + RTOL * np.abs(r64))).max())
        if e > worst or worst_name == "-":
            worst, worst_name = e, k
        ratio = max(ratio, r)
        if r > 1:
            j = np.unravel_index(int(np.argmax(d / (ATOL + RTOL * np.abs(r64)))), d.shape)
            problems.append("%s over the bar at %s: go %.9g ref %.9g" % (k, tuple(int(v) for v in j), g64[j], r64[j]))
    extra = sorted(set(got) - set(exp))
    notes = ["extra keys %s" % ",".join(extra)] if extra else []
    notes += ["%s is %s" % (k, got[k].dtype) for k in exp if k in got and got[k].dtype != np.float32]
    return not problems, worst, worst_name, ratio, problems, notes


def build_cli(tmp, tags=None):
    exe = os.path.join(tmp, "convlstm-run")
    cmd = ["go", "build"] + (["-tags", tags] if tags else []) + ["-o", exe, "./cmd/convlstm-run"]
    print("building: %s" % " ".join(cmd), flush=True)
    t = time.time()
    r = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        print("FAIL: go build failed")
        sys.exit(1)
    print("built in %.1fs" % (time.time() - t), flush=True)
    return [exe]


def main():
    ap = argparse.ArgumentParser(description="Live parity of convlstm-run against PyTorch.")
    ap.add_argument("--n", type=int, default=30, help="number of random configurations (default 30)")
    ap.add_argument("--seed", type=int, help="seed (default: random, printed)")
    ap.add_argument("--only", type=int, nargs="*", help="run only these configuration indices")
    ap.add_argument("--cli", help="program to test instead of building ./cmd/convlstm-run ('run ...' is appended)")
    ap.add_argument("--tags", help="build tags for go build, e.g. purego")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder with every configuration's files")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each CLI command")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(10 ** 9)
    print("parity seed: %d   (replay: /usr/bin/python3 scripts/parity.py --seed %d --n %d)" % (seed, seed, a.n),
          flush=True)
    print("torch %s, numpy %s; bar |go-ref| <= %g + %g*|ref|" % (torch.__version__, np.__version__, ATOL, RTOL))
    torch.set_num_threads(1)

    tmp = tempfile.mkdtemp(prefix="convlstm-parity-")
    try:
        cli = shlex.split(a.cli) if a.cli else build_cli(tmp, a.tags)
        indices = a.only if a.only else range(a.n)
        fails, worst, worst_ratio = [], (0.0, None, "-"), 0.0
        t_all = time.time()
        t_cli = 0.0
        for i in indices:
            cfg = sample_config(seed, i)
            d = os.path.join(tmp, "cfg%03d" % i)
            os.makedirs(d)
            ref, x, state, argv = write_case(cfg, d)
            exp = reference_outputs(ref, x, cfg["time_first"], state, cfg["all_layers"])
            exp64 = reference_outputs(ref, x, cfg["time_first"], state, cfg["all_layers"], dtype=torch.float64)
            noise = max(float(np.abs(exp[k].astype(np.float64) - exp64[k]).max()) if exp[k].size else 0.0
                        for k in exp)
            cmd = cli + ["run"] + argv
            if a.verbose:
                print("   $ " + " ".join(shlex.quote(c) for c in cmd))
            t = time.time()
            try:
                r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, timeout=CLI_TIMEOUT)
                rc, err_text = r.returncode, (r.stderr or r.stdout).strip()
            except subprocess.TimeoutExpired:
                rc, err_text = "timeout", "no result after %ds" % CLI_TIMEOUT
            dt = time.time() - t
            t_cli += dt
            head = "[%3d] %s" % (i, summary(cfg))
            if rc != 0:
                print("%s | CLI ERROR (exit %s, %.2fs) | FAIL" % (head, rc, dt))
                print("      $ " + " ".join(shlex.quote(c) for c in cmd))
                print("      " + "\n      ".join(err_text.splitlines()[-8:]))
                fails.append(i)
                continue
            try:
                with np.load(os.path.join(d, "out.npz")) as z:
                    got = {k: z[k] for k in z.files}
            except Exception as e:  # noqa: BLE001 - any unreadable output is a failure to report
                print("%s | unreadable OUT.npz: %s | FAIL" % (head, e))
                fails.append(i)
                continue
            ok, e, name, ratio, problems, notes = compare(got, exp)
            print("%s | err %.3g (%s) %.2fx bar, noise %.3g, %.2fs | %s%s"
                  % (head, e, name, ratio, noise, dt, "OK" if ok else "FAIL",
                     "  [" + "; ".join(notes) + "]" if notes else ""), flush=True)
            if not ok:
                fails.append(i)
                print("      $ " + " ".join(shlex.quote(c) for c in cmd))
                for p in problems[:8]:
                    print("      " + p)
            if e >= worst[0]:
                worst = (e, i, name)
            worst_ratio = max(worst_ratio, ratio)
        n = len(indices)
        print("-" * 80)
        print("worst abs error %.3g (config %s, %s), worst %.2fx the bar, over %d configs; %d failed; "
              "CLI time %.1fs, total %.1fs" % (worst[0], "-" if worst[1] is None else worst[1], worst[2], worst_ratio,
                                              n, len(fails), t_cli, time.time() - t_all))
        if fails:
            print("FAILED configs: %s   (replay one: /usr/bin/python3 scripts/parity.py --seed %d --only %d -v --keep)"
                  % (" ".join(map(str, fails)), seed, fails[0]))
        print("parity seed: %d" % seed)
        print("parity: %d passed, %d failed" % (n - len(fails), len(fails)))
        sys.exit(1 if fails else 0)
    finally:
        if a.keep:
            print("files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
