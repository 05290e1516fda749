"""Shared by the fixture writers: which machine wrote a fixture, and running
a batch of one-node models through ONNX Runtime (onnxruntime-node)."""

import json
import os
import subprocess
import sys

ORT_VERSION = "1.30.0"
SCRIPTS = os.path.dirname(os.path.abspath(__file__))


def cpu():
    """The CPU's model name and the instruction sets that change PyTorch's
    float32 rounding (its kernels pick different code paths on them)."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() == "model name" and model == "unknown":
                    model = v.strip()
                elif k.strip() == "flags":
                    flags = set(v.split())
    except OSError:
        pass
    isa = [x for x in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "asimd") if x in flags]
    return model, isa


def run_ort_jobs(jobs, tmp, js_source, hint=""):
    """Runs js_source (a node script taking a jobs file and the scripts
    folder, printing JSON) on jobs; exits with an install hint on failure."""
    job_file = os.path.join(tmp, "jobs.json")
    with open(job_file, "w") as f:
        json.dump(jobs, f)
    js = os.path.join(tmp, "run.js")
    with open(js, "w") as f:
        f.write(js_source)
    try:
        out = subprocess.run(["node", js, job_file, SCRIPTS], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit("ONNX Runtime run failed (%s); install it with (cd scripts && npm install --ignore-scripts "
                 "onnxruntime-node@%s)%s" % (e, ORT_VERSION, hint))
    return json.loads(out)
