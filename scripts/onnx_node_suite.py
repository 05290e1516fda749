#!/usr/bin/python3
"""Select the ONNX project's backend node tests that graph/ must pass (issue 8).

    /usr/bin/python3 scripts/onnx_node_suite.py [--out fixtures/onnx-node] [--from DIR] [--dry-run]

The ONNX package (Debian's python3-onnx 1.12) generates its node tests with

    python3 -m onnx.backend.test.cmd_tools generate-data -o DIR

which needs NumPy's removed aliases np.float, np.int, np.bool and np.object
(NumPy >= 1.24) restored before onnx is imported; this script does that and
runs the generator in-process (or reads an already generated DIR with
--from DIR, the folder that holds node/).

A test is selected when
  * every operator in its graph (subgraphs of Loop/If/Scan included) is in
    ISSUE8_OPS below, the list of issue 8 -- so the `_expanded` variants
    (the op's function body written out as primitive nodes) are in when
    all of their primitives are; and
  * every tensor type it touches is float32, int64, int32 or bool: graph
    inputs and outputs, initialisers, Constant values, Cast/ConstantOfShape
    targets, value_info of subgraphs, and the element types of the
    input_*/output_*.pb files; and
  * its result is deterministic: training-mode Dropout with a ratio above
    0 (4 tests) draws its mask from the generator's random numbers.
Everything else is listed in skips.json with the reason (first failing rule).

Written to --out (default fixtures/onnx-node/):
  <test>/model.onnx, <test>/test_data_set_*/{input,output}_*.pb  (copied as generated)
  manifest.json   one entry per selected test: name, ops (sorted, with
                  subgraphs), opset, dtypes, tested op, bytes
  skips.json      every generated node test not selected, with the reason
  LICENSE         the ONNX project's Apache-2.0 notice (the tests are theirs)
  README.md       what this is, the command, counts by op, the skip list
The Go test graph/nodesuite_test.go runs every selected test.
"""

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile

import numpy as np

# NumPy 1.24 removed these aliases; onnx 1.12's test generators still use them.
for _alias, _typ in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    if _alias not in np.__dict__:
        setattr(np, _alias, _typ)

import onnx  # noqa: E402
from onnx import TensorProto  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = "/usr/bin/python3 scripts/onnx_node_suite.py"

# Issue 8's op list, verbatim by family.
ISSUE8_OPS = {
    # elementwise and activations
    "Abs", "Neg", "Exp", "Log", "Sqrt", "Pow", "Reciprocal", "Erf", "Sigmoid", "HardSigmoid", "Tanh",
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Softplus", "Softsign", "HardSwish", "Clip",
    "Min", "Max", "Sum", "Mean", "Add", "Sub", "Mul", "Div", "Where", "Equal", "Less", "Greater", "Not",
    "And", "Or", "Floor", "Ceil", "Sign",
    # convolution and normalisation
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "Resize", "Upsample", "Pad",
    "DepthToSpace", "SpaceToDepth",
    # shape and data movement
    "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather",
    "Expand", "Tile", "Shape", "Size", "ConstantOfShape", "Range", "Cast", "Identity", "Constant",
    "Dropout",
    # matmul, softmax, reductions
    "MatMul", "Gemm", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
    "ReduceL2", "ReduceSumSquare",
    # control flow
    "Loop", "If", "Scan",
}

ALLOWED_DTYPES = {TensorProto.FLOAT: "float32", TensorProto.INT64: "int64", TensorProto.INT32: "int32",
                  TensorProto.BOOL: "bool"}


NUMPY_NAMES = {"FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "BFLOAT16": "bfloat16"}


def dtype_name(code):
    """NumPy's name for an ONNX element type (float32, int64, bool, ...)."""
    name = {v: k for k, v in TensorProto.DataType.items()}.get(code, "TYPE%d" % code)
    return NUMPY_NAMES.get(name, name.lower())


def walk_graph(g, ops, dtypes, domains):
    """Collect op types, element types and node domains of g and its subgraphs."""
    def vi_types(vis):
        for vi in vis:
            t = vi.type
            if t.HasField("tensor_type"):
                dtypes.add(t.tensor_type.elem_type)
            elif t.HasField("sequence_type") or t.HasField("map_type") or t.HasField("optional_type"):
                dtypes.add(-1)  # non-tensor value
    vi_types(g.input)
    vi_types(g.output)
    vi_types(g.value_info)
    for init in g.initializer:
        dtypes.add(init.data_type)
    for n in g.node:
        ops.add(n.op_type)
        domains.add(n.domain or "ai.onnx")
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                dtypes.add(a.t.data_type)
            elif a.type == onnx.AttributeProto.GRAPH:
                walk_graph(a.g, ops, dtypes, domains)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sg in a.graphs:
                    walk_graph(sg, ops, dtypes, domains)
            elif a.type == onnx.AttributeProto.SPARSE_TENSOR:
                dtypes.add(-2)
            if n.op_type == "Cast" and a.name == "to":
                dtypes.add(a.i)


def pb_types(test_dir):
    """Element types of the test's input/output TensorProtos (sequence or
    optional protos count as unsupported)."""
    types = set()
    for ds in sorted(os.listdir(test_dir)):
        d = os.path.join(test_dir, ds)
        if not ds.startswith("test_data_set_") or not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            t = TensorProto()
            with open(os.path.join(d, f), "rb") as fh:
                data = fh.read()
            try:
                t.ParseFromString(data)
            except Exception:  # noqa: BLE001 - not a TensorProto
                types.add(-1)
                continue
            if not t.dims and not t.raw_data and t.data_type == 0:
                types.add(-1)  # a SequenceProto/OptionalProto parses as an empty TensorProto
                continue
            types.add(t.data_type)
    return types


def random_dropout(test_dir, model):
    """A reason when the test's Dropout runs in training mode with a ratio
    above 0: its output is drawn from the generator's random numbers, which
    no other runtime reproduces."""
    from onnx import numpy_helper
    if not any(n.op_type == "Dropout" for n in model.graph.node):
        return None
    names = [vi.name for vi in model.graph.input]
    values = {}
    d = os.path.join(test_dir, "test_data_set_0")
    for k, name in enumerate(names):
        f = os.path.join(d, "input_%d.pb" % k)
        if os.path.exists(f):
            t = TensorProto()
            with open(f, "rb") as fh:
                t.ParseFromString(fh.read())
            values[name] = numpy_helper.to_array(t)
    for n in model.graph.node:
        if n.op_type != "Dropout" or len(n.input) < 3 or not n.input[2]:
            continue
        training = values.get(n.input[2])
        ratio = values.get(n.input[1]) if len(n.input) > 1 and n.input[1] else np.float32(0.5)
        if training is not None and bool(training) and ratio is not None and float(ratio) > 0:
            return "training-mode Dropout with ratio %g: random output (the generator's RNG)" % float(ratio)
    return None


def tested_op(name, ops_by_name):
    """The op a test is about: for X_expanded, the op of X; else the single
    op of the graph, or the op whose snake_case name prefixes the test name."""
    base = name[:-len("_expanded")] if name.endswith("_expanded") else name
    ops = ops_by_name.get(base)
    if ops is None:
        ops = ops_by_name[name]
    if len(ops) == 1:
        return next(iter(ops))
    key = base[len("test_"):].replace("_", "").lower()
    best = ""
    for op in ops:
        if key.startswith(op.lower()) and len(op) > len(best):
            best = op
    return best or ",".join(sorted(ops))


def dir_bytes(d):
    total = 0
    for root, _, files in os.walk(d):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def generate(dst):
    from onnx.backend.test import cmd_tools
    argv = sys.argv
    try:
        sys.argv = ["onnx.backend.test.cmd_tools", "generate-data", "-o", dst]
        cmd_tools.main()
    finally:
        sys.argv = argv


def scan(node_dir):
    ops_by_name, info = {}, {}
    for name in sorted(os.listdir(node_dir)):
        d = os.path.join(node_dir, name)
        model = onnx.load(os.path.join(d, "model.onnx"))
        ops, dtypes, domains = set(), set(), set()
        walk_graph(model.graph, ops, dtypes, domains)
        dtypes |= pb_types(d)
        opset = 0
        for imp in model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                opset = imp.version
        ops_by_name[name] = ops
        info[name] = {"ops": sorted(ops), "dtypes": dtypes, "domains": sorted(domains), "opset": opset,
                      "bytes": dir_bytes(d), "random": random_dropout(d, model)}
    return ops_by_name, info


def classify(name, inf, op):
    other_domains = [x for x in inf["domains"] if x != "ai.onnx"]
    if other_domains:
        return "operator domain %s" % ",".join(other_domains)
    missing = sorted(set(inf["ops"]) - ISSUE8_OPS)
    if missing:
        return "op not in issue 8's list: %s" % ",".join(missing)
    bad = sorted(dtype_name(t) if t >= 0 else ("non-tensor value" if t == -1 else "sparse tensor")
                 for t in inf["dtypes"] if t not in ALLOWED_DTYPES)
    if bad:
        return "dtype %s" % ",".join(bad)
    return inf["random"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", "onnx-node"))
    ap.add_argument("--from", dest="src", help="an already generated DIR (holding node/)")
    ap.add_argument("--dry-run", action="store_true", help="select and report, write nothing")
    args = ap.parse_args()

    tmp = None
    if args.src:
        src = args.src
    else:
        tmp = tempfile.mkdtemp(prefix="onnx-node-")
        src = tmp
        print("generating node tests with onnx %s into %s" % (onnx.__version__, src))
        generate(src)
    try:
        node_dir = os.path.join(src, "node")
        ops_by_name, info = scan(node_dir)
        selected, skips = [], {}
        for name in sorted(info):
            inf = info[name]
            op = tested_op(name, ops_by_name)
            reason = classify(name, inf, op)
            if reason:
                skips[name] = {"op": op, "reason": reason}
            else:
                selected.append((name, op))
        total_bytes = sum(info[n]["bytes"] for n, _ in selected)
        by_op = collections.Counter(op for _, op in selected)
        print("onnx %s: %d node tests generated; %d selected (%d expanded), %.2f MB; %d skipped" % (
            onnx.__version__, len(info), len(selected), sum(n.endswith("_expanded") for n, _ in selected),
            total_bytes / 1e6, len(skips)))
        reasons = collections.Counter(s["reason"].split(":")[0] if s["reason"].startswith("op not") else
                                      s["reason"] for s in skips.values())
        for r, c in reasons.most_common():
            print("  skipped %4d  %s" % (c, r))
        # Ops of the list with a test generated but none selected.
        listed_untested = sorted(ISSUE8_OPS - set(by_op))
        print("ops of issue 8 with no selected test: %s" % (", ".join(listed_untested) or "none"))
        if args.dry_run:
            for op, c in sorted(by_op.items()):
                print("  %-22s %d" % (op, c))
            return
        write(args.out, node_dir, selected, skips, info, by_op, total_bytes, listed_untested)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def write(out, node_dir, selected, skips, info, by_op, total_bytes, listed_untested):
    if os.path.isdir(out):
        # Only ever remove what this script wrote: test_* folders and its own files.
        for f in os.listdir(out):
            p = os.path.join(out, f)
            if f.startswith("test_") and os.path.isdir(p):
                shutil.rmtree(p)
            elif f in ("manifest.json", "skips.json", "LICENSE", "README.md"):
                os.remove(p)
    os.makedirs(out, exist_ok=True)
    manifest = {"onnx": onnx.__version__, "command": COMMAND,
                "generator": "python3 -m onnx.backend.test.cmd_tools generate-data -o DIR",
                "tolerance": {"float": {"rtol": 1e-3, "atol": 1e-7}, "int_bool": "exact"},
                "tests": []}
    for name, op in selected:
        shutil.copytree(os.path.join(node_dir, name), os.path.join(out, name))
        inf = info[name]
        manifest["tests"].append({"name": name, "op": op, "ops": inf["ops"], "opset": inf["opset"],
                                  "dtypes": sorted(dtype_name(t) for t in inf["dtypes"]),
                                  "expanded": name.endswith("_expanded"), "bytes": inf["bytes"]})
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    with open(os.path.join(out, "skips.json"), "w") as f:
        json.dump({"onnx": onnx.__version__, "skipped": skips}, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out, "LICENSE"), "w") as f:
        f.write(license_text())
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(readme(selected, skips, by_op, total_bytes, listed_untested))
    print("wrote %d tests to %s (%.2f MB)" % (len(selected), out, dir_bytes(out) / 1e6))


def license_text():
    """The ONNX project's licence notice: onnx 1.12 is Apache-2.0 (its
    PKG-INFO says so; Debian's copyright file still lists the pre-2020 MIT
    terms), with the full licence text from Debian's common-licenses."""
    with open("/usr/share/common-licenses/Apache-2.0") as f:
        body = f.read()
    return ("The files under this folder (test_*/model.onnx and test_*/test_data_set_*/*.pb) were\n"
            "generated, unchanged, by the ONNX project's backend test generators\n"
            "(onnx %s, python3 -m onnx.backend.test.cmd_tools generate-data).\n\n"
            "Copyright (c) ONNX Project Contributors\n"
            "SPDX-License-Identifier: Apache-2.0\n\n" % onnx.__version__) + body


def readme(selected, skips, by_op, total_bytes, listed_untested):
    L = []
    L.append("# ONNX backend node tests (the subset graph/ must pass)\n")
    L.append("The ONNX project's own operator conformance tests, generated by the ONNX Python package "
             "(Debian python3-onnx %s) and copied here unchanged: each `test_*/` holds `model.onnx` "
             "and `test_data_set_N/input_K.pb`, `output_K.pb` (TensorProtos). They are the ONNX "
             "authors' tests, not ours: Apache-2.0, see `LICENSE` (Copyright (c) ONNX Project "
             "Contributors).\n" % onnx.__version__)
    L.append("Regenerate (writes only this folder):\n\n```sh\n%s\n```\n" % COMMAND)
    L.append("which runs `python3 -m onnx.backend.test.cmd_tools generate-data -o DIR` in-process "
             "(with NumPy's removed aliases `np.float`, `np.int`, `np.bool`, `np.object` restored) and "
             "keeps every test whose operators (subgraphs included) are all in issue 8's list and whose "
             "tensors are all float32, int64, int32 or bool, leaving out training-mode Dropout with a "
             "ratio above 0 (random). `graph/nodesuite_test.go` runs them with "
             "the suite's tolerance (floats: rtol 1e-3, atol 1e-7; integers and booleans exact; dtype "
             "and shape must match).\n")
    L.append("Selected: **%d tests** (%d `_expanded` function graphs), %.2f MB. "
             "`manifest.json` lists each with its ops, opset and dtypes; `skips.json` every test "
             "left out and why.\n" % (len(selected), sum(n.endswith("_expanded") for n, _ in selected),
                                      total_bytes / 1e6))
    L.append("## Tests by op\n\n| op | tests |\n|---|---:|")
    for op, c in sorted(by_op.items()):
        L.append("| %s | %d |" % (op, c))
    L.append("")
    if listed_untested:
        L.append("Ops of issue 8's list with no test selected here (none generated by onnx %s, or all "
                 "skipped for dtype): %s.\n" % (onnx.__version__, ", ".join(listed_untested)))
    # Skips of ops in the list (the interesting ones) in full; the rest summarised.
    listed = {n: s for n, s in skips.items() if s["op"] in ISSUE8_OPS}
    L.append("## Skipped tests of listed ops (%d)\n" % len(listed))
    L.append("| test | reason |\n|---|---|")
    for n, s in sorted(listed.items()):
        L.append("| %s | %s |" % (n, s["reason"]))
    L.append("")
    other = collections.Counter()
    for s in skips.values():
        if s["op"] not in ISSUE8_OPS:
            other[s["op"]] += 1
    L.append("## Skipped: ops outside issue 8's list (%d tests)\n" % sum(other.values()))
    L.append(", ".join("%s (%d)" % (op, c) for op, c in sorted(other.items())) + "\n")
    return "\n".join(L)


if __name__ == "__main__":
    main()
