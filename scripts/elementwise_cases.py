#!/usr/bin/python3
"""Write the elementwise semantics cases graph/ must pass (issue 8).

    /usr/bin/python3 scripts/elementwise_cases.py [--out fixtures/elementwise] [--no-ort]

The ONNX backend node suite (fixtures/onnx-node) covers each elementwise op
once or twice; these small one-node models pin down the corners it leaves
out: integer division (truncated toward zero), integer wrap-around, Clip
with a missing bound, min > max and the opset-6 defaults, PRelu slope
shapes, comparison and logic outputs as bool tensors with broadcasting,
Where over three shapes, Pow across types, variadic Min/Max/Sum/Mean with
broadcasting, the legacy broadcast/axis attributes of opset 6, integer
Abs/Neg/Sign/Relu, NaN propagation and extreme inputs of the activations.

The expected outputs are computed with NumPy by the formulas of the ONNX
reference implementation (onnx/backend/test/case/node/*.py and, for what it
does not cover, the reference evaluator of later onnx releases, e.g. Div's
np.divide(a, b).astype(a.dtype)), and every case that ONNX Runtime
(onnxruntime-node 1.30.0, (cd scripts && npm install --ignore-scripts
onnxruntime-node@1.30.0)) accepts is run there too: manifest.json records
for each case whether ORT agrees (the suite's tolerance: rtol 1e-3, atol
1e-7, integers exact, NaN equals NaN), differs (with the values) or refuses
it. Written in the node suite's layout (<case>/model.onnx,
<case>/test_data_set_0/{input,output}_K.pb), read by
graph/ops_elementwise_test.go.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import provenance

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = "/usr/bin/python3 scripts/elementwise_cases.py"

F, I32, I64, B = np.float32, np.int32, np.int64, np.bool_
ONNX_TYPES = {np.dtype(F): TensorProto.FLOAT, np.dtype(I32): TensorProto.INT32, np.dtype(I64): TensorProto.INT64, np.dtype(B): TensorProto.BOOL}
ORT_TYPES = {np.dtype(F): "float32", np.dtype(I32): "int32", np.dtype(I64): "int64", np.dtype(B): "bool"}

INF, NAN = np.inf, np.nan
FMAX = np.finfo(F).max
EDGE = np.array([-INF, -100, -10, -1, -1e-4, -0.0, 0, 1e-4, 0.5, 1, 10, 100, INF], F)


def rng_floats(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(F) * 2


# ONNX reference formulas (onnx/backend/test/case/node/<op>.py).
def elu(x, alpha=1.0):
    return (np.clip(x, 0, INF) + (np.exp(np.clip(x, -INF, 0)) - 1) * alpha).astype(F)


def selu(x, alpha, gamma):
    return (np.clip(x, 0, INF) * gamma + (np.exp(np.clip(x, -INF, 0)) * alpha - alpha) * gamma).astype(F)


def celu(x, alpha=1.0):
    return (np.maximum(0, x) + np.minimum(0, alpha * (np.exp(x / alpha) - 1))).astype(F)


def erf(x):
    import math
    return np.vectorize(math.erf)(x.astype(np.float64)).astype(F)


def pow_ref(x, y):  # pow.py: np.power(x, y).astype(x.dtype)
    with np.errstate(all="ignore"):
        return np.power(x, y).astype(x.dtype)


def div_ref(a, b):  # reference evaluator: np.divide, cast back to a's type
    return np.divide(a, b).astype(a.dtype)


def case(name, op, opset, inputs, ref, attrs=None, input_names=None, note=""):
    """inputs: list of arrays (None: an omitted optional input)."""
    return dict(name=name, op=op, opset=opset, inputs=inputs, ref=ref, attrs=attrs or {}, input_names=input_names, note=note)


def cases():
    c = []
    a = np.array([7, -7, 7, -7, 9, -9, 0, 5, 1, -1], I64)
    b = np.array([2, 2, -2, -2, 4, 4, 3, -1, 3, 3], I64)
    c.append(case("div_int64_truncates", "Div", 14, [a, b], lambda a, b: div_ref(a, b),
                  note="integer Div truncates toward zero (-7/2 = -3), as C, ORT and the reference's cast"))
    a32 = np.array([[9, -9, 100], [-1, 1, -100]], I32)
    b32 = np.array([4, 4, -7], I32)
    c.append(case("div_int32_broadcast", "Div", 13, [a32, b32], lambda a, b: div_ref(a, b)))
    c.append(case("mul_int32_wraps", "Mul", 14, [np.array([70000, -70000, 1 << 30, 3], I32), np.array([70000, 3, 4, -5], I32)],
                  lambda a, b: np.multiply(a, b), note="int32 products wrap around"))
    c.append(case("add_int64_broadcast", "Add", 14, [np.arange(6, dtype=I64).reshape(2, 3), np.array([[10], [20]], I64)], np.add))
    c.append(case("sub_float_broadcast_3d", "Sub", 14, [rng_floats(1, 2, 1, 4), rng_floats(2, 3, 1)], np.subtract))
    c.append(case("div_float_scalar_left", "Div", 14, [np.array(3.0, F), rng_floats(3, 2, 3)], np.divide))
    c.append(case("add_legacy_axis", "Add", 6, [rng_floats(4, 2, 3, 4, 5), rng_floats(5, 3, 4)],
                  lambda a, b: a + b[None, :, :, None], attrs=dict(broadcast=1, axis=1),
                  note="opset 6: B matches A's axes 1-2 and is stretched over the others"))
    c.append(case("mul_legacy_trailing", "Mul", 6, [rng_floats(6, 2, 3, 4), rng_floats(7, 4)],
                  lambda a, b: a * b, attrs=dict(broadcast=1)))
    c.append(case("sub_legacy_same_shape", "Sub", 1, [rng_floats(8, 2, 3), rng_floats(9, 2, 3)], np.subtract,
                  attrs=dict(consumed_inputs=[0, 0])))

    x = rng_floats(10, 3, 4)
    c.append(case("clip_max_only", "Clip", 13, [x, None, np.array(0.5, F)], lambda x, lo, hi: np.minimum(x, hi)))
    c.append(case("clip_min_only", "Clip", 13, [x, np.array(-0.5, F)], lambda x, lo: np.maximum(x, lo)))
    c.append(case("clip_no_bounds", "Clip", 13, [x], lambda x: x))
    c.append(case("clip_min_above_max", "Clip", 13, [x, np.array(2, F), np.array(1, F)],
                  lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi), note="min > max: every value is max"))
    c.append(case("clip_opset6_defaults", "Clip", 6, [EDGE], lambda x: np.clip(x, -FMAX, FMAX).astype(F),
                  note="opset 6-10: absent bounds default to -FLT_MAX, FLT_MAX, so infinities are clipped"))
    c.append(case("clip_opset6_min", "Clip", 6, [EDGE], lambda x: np.clip(x, -1, FMAX).astype(F), attrs=dict(min=-1.0)))
    c.append(case("clip_opset1_unbounded", "Clip", 1, [EDGE], lambda x: np.clip(x, -INF, 3.0).astype(F), attrs=dict(max=3.0)))
    c.append(case("clip_int64", "Clip", 13, [np.array([-5, -1, 0, 3, 9], I64), np.array(-2, I64), np.array(4, I64)],
                  lambda x, lo, hi: np.clip(x, lo, hi)))
    c.append(case("clip_nan", "Clip", 13, [np.array([NAN, -3, 3], F), np.array(-1, F), np.array(1, F)],
                  lambda x, lo, hi: np.clip(x, lo, hi), note="NaN stays NaN"))

    xs = rng_floats(11, 2, 3, 2, 2)
    c.append(case("prelu_per_channel", "PRelu", 16, [xs, np.array([0.1, -0.5, 2.0], F).reshape(3, 1, 1)],
                  lambda x, s: np.where(x < 0, x * s, x).astype(F)))
    c.append(case("prelu_one_slope", "PRelu", 16, [xs, np.array([0.25], F)], lambda x, s: np.where(x < 0, x * s, x).astype(F)))
    c.append(case("prelu_trailing_axis", "PRelu", 16, [rng_floats(12, 2, 3, 4), np.array([0.1, 0.2, 0.3, 0.4], F)],
                  lambda x, s: np.where(x < 0, x * s, x).astype(F)))
    c.append(case("prelu_int32", "PRelu", 16, [np.array([[-4, 5], [-6, 0]], I32), np.array([3, -2], I32)],
                  lambda x, s: np.where(x < 0, x * s, x).astype(I32)))
    c.append(case("prelu_opset6", "PRelu", 6, [xs, np.array([0.3], F)], lambda x, s: np.where(x < 0, x * s, x).astype(F)))

    y = rng_floats(13, 3, 4)
    c.append(case("less_broadcast_bool", "Less", 13, [y, y[1]], np.less))
    c.append(case("greater_scalar", "Greater", 13, [y, np.array(0, F)], np.greater))
    c.append(case("less_or_equal_nan", "LessOrEqual", 16, [np.array([NAN, 1, 2, NAN], F), np.array([1, 1, 1, NAN], F)],
                  np.less_equal, note="NaN compares false"))
    c.append(case("greater_or_equal_int32", "GreaterOrEqual", 16, [np.array([[1, 5], [-3, 2]], I32), np.array([2, -3], I32)], np.greater_equal))
    c.append(case("equal_int64_broadcast", "Equal", 13, [np.array([[1, 2, 3], [3, 2, 1]], I64), np.array([3, 2, 3], I64)], np.equal))
    c.append(case("equal_bool", "Equal", 13, [np.array([True, False, True, False]), np.array([True, True, False, False])], np.equal))
    c.append(case("equal_float_nan", "Equal", 13, [np.array([NAN, 1, -0.0], F), np.array([NAN, 1, 0.0], F)], np.equal))
    c.append(case("less_legacy_axis", "Less", 1, [rng_floats(14, 2, 3, 4), rng_floats(15, 3)],
                  lambda a, b: a < b[None, :, None], attrs=dict(broadcast=1, axis=1)))
    bb = np.array([[True, False], [False, True], [True, True]])
    c.append(case("xor_broadcast", "Xor", 7, [bb, np.array([True, False])], np.logical_xor))
    c.append(case("and_broadcast", "And", 7, [bb, np.array([[True], [False], [True]])], np.logical_and))
    c.append(case("or_scalar", "Or", 7, [bb, np.array(False)], np.logical_or))
    c.append(case("not_3d", "Not", 1, [bb.reshape(3, 1, 2)], np.logical_not))

    c.append(case("where_three_shapes", "Where", 16, [np.array([[True], [False]]).reshape(2, 1, 1), rng_floats(16, 3, 1), np.array(-1, F)],
                  np.where))
    c.append(case("where_int64", "Where", 16, [bb, np.array([1, 2], I64), np.array([[10, 20], [30, 40], [50, 60]], I64)], np.where))

    c.append(case("pow_int64", "Pow", 15, [np.array([2, 3, -2, 5, 7], I64), np.array([3, 0, 3, 2, 1], I64)], pow_ref))
    c.append(case("pow_int32_float_exponent", "Pow", 15, [np.array([4, 9, 27, 10], I32), np.array([0.5, 0.5, 0.3333333, 1.5], F)], pow_ref,
                  note="computed in float64, truncated to int32"))
    c.append(case("pow_float_int64_exponent", "Pow", 15, [rng_floats(17, 2, 3), np.array([2, 3, -1], I64)], pow_ref))
    c.append(case("pow_float_scalar_half", "Pow", 15, [np.array([0, -0.0, 4, 2, INF, -INF, -4], F), np.array(0.5, F)], pow_ref,
                  note="pow(-0, 0.5) = +0, pow(-inf, 0.5) = +inf, pow(-4, 0.5) = NaN"))
    c.append(case("pow_float_scalar_two", "Pow", 15, [np.array([3, -3, 1e20, -INF, NAN], F), np.array(2, F)], pow_ref))

    c.append(case("max_int32_three_broadcast", "Max", 13, [np.array([[1, 9, -3], [4, -5, 6]], I32), np.array([2, 2, 2], I32), np.array(0, I32)],
                  lambda a, b, d: np.maximum(np.maximum(a, b), d)))
    c.append(case("min_float_three_broadcast", "Min", 13, [rng_floats(18, 2, 3), rng_floats(19, 3), rng_floats(20, 2, 1)],
                  lambda a, b, d: np.minimum(np.minimum(a, b), d)))
    c.append(case("mean_broadcast", "Mean", 13, [rng_floats(21, 2, 3), rng_floats(22, 3), rng_floats(23, 2, 1)],
                  lambda a, b, d: np.divide(np.add(np.add(a, b), d), 3)))
    c.append(case("sum_broadcast", "Sum", 13, [rng_floats(24, 2, 1, 3), rng_floats(25, 4, 1)], np.add))
    c.append(case("max_opset6_same_shapes", "Max", 6, [rng_floats(26, 2, 3), rng_floats(27, 2, 3)], np.maximum))

    ints = np.array([-2147483648, -7, 0, 7, 2147483647], I32)
    c.append(case("abs_int32", "Abs", 13, [ints], np.abs, note="|INT32_MIN| wraps to INT32_MIN as in NumPy"))
    c.append(case("neg_int64", "Neg", 13, [np.array([-3, 0, 5, -9223372036854775807], I64)], np.negative))
    c.append(case("sign_int32", "Sign", 13, [ints], np.sign))
    c.append(case("relu_int32", "Relu", 14, [ints], lambda x: np.maximum(x, 0).astype(I32)))

    # Activations at extreme values, NaN propagation.
    e = EDGE
    c.append(case("sigmoid_edges", "Sigmoid", 13, [e], lambda x: (1 / (1 + np.exp(-x))).astype(F)))
    c.append(case("tanh_edges", "Tanh", 13, [e], np.tanh))
    c.append(case("exp_edges", "Exp", 13, [e], np.exp))
    c.append(case("erf_edges", "Erf", 13, [e], erf))
    c.append(case("elu_edges", "Elu", 6, [e], lambda x: elu(x, 0.7), attrs=dict(alpha=0.7)))
    c.append(case("selu_edges", "Selu", 6, [e], lambda x: selu(x, 1.67326319217681884765625, 1.05070102214813232421875)))
    c.append(case("selu_opset1_defaults", "Selu", 1, [e], lambda x: selu(x, 1.6732, 1.0507),
                  note="Selu-1's default alpha and gamma are 1.6732 and 1.0507"))
    c.append(case("celu_edges", "Celu", 12, [e], lambda x: celu(x, 2.0), attrs=dict(alpha=2.0)))
    c.append(case("softplus_edges", "Softplus", 1, [e], lambda x: np.log(np.exp(x.astype(np.float64)) + 1).astype(F),
                  note="log(exp(x) + 1) evaluated without overflow"))
    c.append(case("softsign_edges", "Softsign", 1, [e[1:-1]], lambda x: (x / (1 + np.abs(x))).astype(F)))
    c.append(case("hardsigmoid_edges", "HardSigmoid", 6, [e], lambda x: np.clip(x * 0.3 + 0.4, 0, 1).astype(F), attrs=dict(alpha=0.3, beta=0.4)))
    c.append(case("hardswish_edges", "HardSwish", 14, [e[1:-1]], lambda x: (x * np.maximum(0, np.minimum(1, x * F(1 / 6) + F(0.5)))).astype(F)))
    c.append(case("leakyrelu_edges", "LeakyRelu", 16, [e], lambda x: np.where(x < 0, x * F(0.2), x).astype(F), attrs=dict(alpha=0.2)))
    xg = np.concatenate([e, rng_floats(28, 20)])
    c.append(case("gelu_opset20", "Gelu", 20, [xg], lambda x: (0.5 * x.astype(np.float64) * (1 + erf(x / np.sqrt(2)).astype(np.float64))).astype(F),
                  note="Gelu-20, approximate=none"))
    c.append(case("gelu_opset20_tanh", "Gelu", 20, [xg[1:-1]], lambda x: (0.5 * x.astype(np.float64) * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * np.power(x.astype(np.float64), 3))))).astype(F),
                  attrs=dict(approximate="tanh"), note="Gelu-20, approximate=tanh"))
    nan = np.array([NAN, -NAN, 1], F)
    for op, f in (("Relu", lambda x: np.maximum(x, 0)), ("Sigmoid", lambda x: 1 / (1 + np.exp(-x))), ("Erf", erf),
                  ("Tanh", np.tanh), ("Abs", np.abs), ("Sqrt", np.sqrt), ("Floor", np.floor), ("Sign", np.sign)):
        c.append(case("nan_" + op.lower(), op, 13 if op != "Relu" else 14, [nan], lambda x, f=f: f(x).astype(F), note="NaN stays NaN"))
    c.append(case("max_nan", "Max", 13, [np.array([NAN, 1, 2], F), np.array([0, NAN, 1], F)], np.maximum, note="NaN propagates (NumPy)"))
    return c


def attr_proto(k, v):
    return helper.make_attribute(k, v)


def build(cs, out_dir):
    names = [f"x{i}" for i in range(len(cs["inputs"]))]
    node_in = [("" if t is None else n) for n, t in zip(names, cs["inputs"])]
    while node_in and node_in[-1] == "":
        node_in.pop()
    node = helper.make_node(cs["op"], node_in, ["y"], name="n", **cs["attrs"])
    inputs = [t for t in cs["inputs"] if t is not None]
    feeds = [n for n, t in zip(names, cs["inputs"]) if t is not None]
    expected = np.asarray(cs["ref"](*cs["inputs"]))
    assert expected.dtype in ONNX_TYPES, (cs["name"], expected.dtype)
    vis = [helper.make_tensor_value_info(n, ONNX_TYPES[t.dtype], t.shape) for n, t in zip(feeds, inputs)]
    out = helper.make_tensor_value_info("y", ONNX_TYPES[expected.dtype], expected.shape)
    graph = helper.make_graph([node], cs["name"], vis, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", cs["opset"])], producer_name="elementwise_cases.py")
    model.ir_version = 7 if cs["opset"] < 14 else (8 if cs["opset"] < 19 else 9)
    d = os.path.join(out_dir, cs["name"])
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, (n, t) in enumerate(zip(feeds, inputs)):
        with open(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(t, n).SerializeToString())
    with open(os.path.join(d, "test_data_set_0", "output_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(expected, "y").SerializeToString())
    return feeds, inputs, expected


ORT_JS = r"""
const path = require('path');
const fs = require('fs');
const ort = require(path.join(process.argv[3], 'node_modules', 'onnxruntime-node'));
(async () => {
  const jobs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const res = {};
  for (const j of jobs) {
    try {
      const s = await ort.InferenceSession.create(j.model, {intraOpNumThreads: 1});
      const feeds = {};
      for (const f of j.feeds) {
        let data = f.data;
        if (f.type === 'float32') data = Float32Array.from(data.map((v) => (v === null ? NaN : v)));
        else if (f.type === 'int32') data = Int32Array.from(data);
        else if (f.type === 'int64') data = BigInt64Array.from(data.map((v) => BigInt(v)));
        else if (f.type === 'bool') data = Uint8Array.from(data.map((v) => (v ? 1 : 0)));
        feeds[f.name] = new ort.Tensor(f.type, data, f.shape);
      }
      const out = (await s.run(feeds)).y;
      res[j.name] = {type: out.type, dims: out.dims, data: Array.from(out.data, (v) => (typeof v === 'bigint' ? v.toString() : (Number.isNaN(v) ? 'NaN' : (v === Infinity ? 'Inf' : (v === -Infinity ? '-Inf' : v)))))};
    } catch (e) {
      res[j.name] = {error: String(e.message || e).split('\n')[0]};
    }
  }
  process.stdout.write(JSON.stringify(res));
})();
"""


def js_value(v, dtype):
    if dtype == np.dtype(F):
        return None if np.isnan(v) else (float(v) if np.isfinite(v) else (1e39 if v > 0 else -1e39))
    if dtype == np.dtype(B):
        return bool(v)
    return str(int(v)) if dtype == np.dtype(I64) else int(v)


def run_ort(jobs, tmp):
    return provenance.run_ort_jobs(jobs, tmp, ORT_JS, " or pass --no-ort")


def agree(ort_out, expected):
    if "error" in ort_out:
        return "refused: " + ort_out["error"]
    conv = {"NaN": np.nan, "Inf": np.inf, "-Inf": -np.inf}
    got = np.array([conv.get(v, v) for v in ort_out["data"]])
    if ort_out["type"] == "int64":
        got = got.astype(np.int64)
    got = got.reshape(ort_out["dims"])
    if got.shape != expected.shape:
        return f"differs: shape {got.shape}, reference {expected.shape}"
    if expected.dtype == np.dtype(F):
        g, r = got.astype(np.float64), expected.astype(np.float64)
        ok = np.isclose(g, r, rtol=1e-3, atol=1e-7, equal_nan=True) | ((g == r) & np.isinf(r))
    else:
        ok = got.astype(np.int64) == expected.astype(np.int64)
    if ok.all():
        return "agrees"
    i = int(np.argmin(ok.reshape(-1)))
    return f"differs: ORT {got.reshape(-1)[i]}, reference {expected.reshape(-1)[i]} at flat index {i}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", "elementwise"))
    ap.add_argument("--no-ort", action="store_true", help="do not cross-check with ONNX Runtime")
    args = ap.parse_args()
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    manifest, jobs, expected = [], [], {}
    for cs in cases():
        feeds, inputs, exp = build(cs, args.out)
        expected[cs["name"]] = exp
        manifest.append(dict(name=cs["name"], op=cs["op"], opset=cs["opset"], note=cs["note"]))
        jobs.append(dict(name=cs["name"], model=os.path.join(args.out, cs["name"], "model.onnx"),
                         feeds=[dict(name=n, type=ORT_TYPES[t.dtype], shape=list(t.shape), data=[js_value(v, t.dtype) for v in t.reshape(-1)])
                                for n, t in zip(feeds, inputs)]))
    if not args.no_ort:
        with tempfile.TemporaryDirectory() as tmp:
            res = run_ort(jobs, tmp)
        for m in manifest:
            m["ort_1_30_0"] = agree(res[m["name"]], expected[m["name"]])
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(dict(command=COMMAND, onnx=onnx.__version__, numpy=np.__version__, cases=manifest), f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write("# Elementwise semantics cases (graph/ops_elementwise_test.go)\n\n")
        f.write("One-node ONNX models for the corners of the elementwise ops that the ONNX node suite leaves out, "
                "in the node suite's layout (`<case>/model.onnx`, `<case>/test_data_set_0/{input,output}_K.pb`). "
                "Expected outputs: NumPy, by the formulas of the ONNX reference implementation; each case is also run in "
                "ONNX Runtime 1.30.0 where it implements it (column ORT; opset < 7 forms are not in ORT). Written by\n\n"
                f"```sh\n{COMMAND}\n```\n\n(onnx {onnx.__version__}, numpy {np.__version__}).\n\n")
        f.write("| case | op | opset | ORT | note |\n|---|---|---:|---|---|\n")
        for m in manifest:
            f.write(f'| {m["name"]} | {m["op"]} | {m["opset"]} | {m.get("ort_1_30_0", "not run")} | {m["note"]} |\n')
    for m in manifest:
        print(f'{m["name"]:32s} {m.get("ort_1_30_0", "")}')


if __name__ == "__main__":
    main()
