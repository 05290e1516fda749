#!/usr/bin/python3
"""Write the conv/pool/resize/pad/norm corner cases graph/ must pass (issue 8).

    /usr/bin/python3 scripts/conv_cases.py [--out fixtures/conv-cases]

The ONNX backend node suite of onnx 1.12 (fixtures/onnx-node) stops at
opset 17 and tests each of these ops on a few attribute combinations; these
one-node models cover the rest: Resize's opset-18/19 forms (axes,
keep_aspect_ratio_policy, antialias, half_pixel_symmetric), tf_half_pixel_for_nn,
Resize-10 and Upsample-7/9, a crop-and-resize that extrapolates, 3-D and
channel-axis resizing; Pad with negative pads, wide reflections, axes and
wrap; ConvTranspose with groups, dilations, output_padding, SAME_LOWER, 1-D
output_shape and 3-D groups; MaxPool and AveragePool with ceil_mode and
padding together, dilations, Indices in 3-D, AveragePool-19's dilations;
normalisations at older opsets and odd ranks; DepthToSpace/SpaceToDepth
with block 3.

The expected outputs are ONNX Runtime's (onnxruntime-node 1.30.0,
(cd scripts && npm install --ignore-scripts onnxruntime-node@1.30.0), or
NODE_PATH pointing at an install), an implementation independent of ours.
Where PyTorch computes the same thing (pooling with ceil_mode and padding,
bilinear/bicubic/nearest resizing, transposed convolutions) it is run as
well and must agree within the suite's tolerance; where the onnx 1.12
reference code exists (interpolate_nd for Resize up to opset 13, np.pad
for Pad) likewise. A case whose `expect` is `refuse:<attr>` is one the
interpreter must refuse with an error naming that attribute (ORT's numbers
are kept in the manifest for reference). Written in the node suite's
layout (<case>/model.onnx, <case>/test_data_set_0/{input,output}_K.pb);
read by graph/ops_conv_test.go.
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
import torch
import torch.nn.functional as TF
from onnx import TensorProto, helper, numpy_helper

import provenance

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = "/usr/bin/python3 scripts/conv_cases.py"
ORT_VERSION = "1.30.0"

F, I64 = np.float32, np.int64
ONNX_TYPES = {np.dtype(F): TensorProto.FLOAT, np.dtype(I64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32}


def rnd(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(F)


def case(name, op, opset, x, attrs=None, consts=None, outputs=1, torch_ref=None, ref=None, expect="pass", note=""):
    """x: the float input(s) fed at run time (a list, or one array);
    consts: the other inputs, in order, written as initialisers (None: an
    omitted optional input; a trailing None is dropped). torch_ref and ref
    compute the expected first output another way, to cross-check ORT."""
    if not isinstance(x, list):
        x = [x]
    return dict(name=name, op=op, opset=opset, x=x, attrs=attrs or {}, consts=consts or [], outputs=outputs,
                torch_ref=torch_ref, ref=ref, expect=expect, note=note)


def onnx_resize_ref(x, mode, **kw):
    """The onnx 1.12 reference (interpolate_nd of its Resize node tests)."""
    from onnx.backend.test.case.node import resize as r
    a, nm = kw.pop("A", -0.75), kw.pop("nearest_mode", "round_prefer_floor")
    coeffs = {"linear": r.linear_coeffs, "cubic": lambda t: r.cubic_coeffs(t, A=a),
              "nearest": lambda t: r.nearest_coeffs(t, mode=nm)}[mode]
    return r.interpolate_nd(x, coeffs, **kw).astype(F)


def cases():
    c = []
    x45 = rnd(1, 1, 2, 4, 5)
    # ---- Resize ----
    c.append(case("resize18_axes_scales", "Resize", 18, x45, dict(mode="linear", axes=[2, 3]),
                  [None, np.array([2.0, 1.5], F)],
                  torch_ref=lambda x: TF.interpolate(x, scale_factor=(2.0, 1.5), mode="bilinear", align_corners=False),
                  note="opset 18: scales for the listed axes only"))
    c.append(case("resize18_axes_negative_sizes_cubic", "Resize", 18, x45, dict(mode="cubic", axes=[-1]),
                  [None, None, np.array([8], I64)],
                  ref=lambda x: onnx_resize_ref(x, "cubic", output_size=[1, 2, 4, 8])))
    c.append(case("resize18_keep_not_larger", "Resize", 18, x45,
                  dict(mode="nearest", keep_aspect_ratio_policy="not_larger", axes=[2, 3], coordinate_transformation_mode="asymmetric"),
                  [None, None, np.array([7, 9], I64)], note="scale min(7/4, 9/5) = 1.75 on both axes: 7x9"))
    c.append(case("resize18_keep_not_smaller", "Resize", 18, x45,
                  dict(mode="linear", keep_aspect_ratio_policy="not_smaller", axes=[2, 3]),
                  [None, None, np.array([6, 6], I64)], note="scale max(6/4, 6/5) = 1.5: 6x8 (7.5 rounds up)"))
    c.append(case("resize19_half_pixel_symmetric", "Resize", 19, x45,
                  dict(mode="linear", coordinate_transformation_mode="half_pixel_symmetric"),
                  [None, np.array([1, 1, 1.7, 0.6], F)]))
    c.append(case("resize18_antialias_enlarging", "Resize", 18, x45, dict(mode="linear", antialias=1),
                  [None, np.array([1, 1, 2, 2], F)], note="antialias only acts when shrinking"))
    c.append(case("resize18_antialias_shrinking", "Resize", 18, rnd(2, 1, 1, 8, 8), dict(mode="linear", antialias=1),
                  [None, np.array([1, 1, 0.5, 0.5], F)], expect="refuse:antialias"))
    c.append(case("resize11_tf_half_pixel_for_nn", "Resize", 11, x45,
                  dict(mode="nearest", coordinate_transformation_mode="tf_half_pixel_for_nn"),
                  [np.array([], F), np.array([1, 1, 1.6, 2.2], F)]))
    c.append(case("resize10_nearest_shrinking", "Resize", 10, rnd(3, 1, 1, 5, 7), dict(mode="nearest"),
                  [np.array([1, 1, 0.6, 0.5], F)], note="Resize-10: asymmetric; ORT rounds up when shrinking"))
    c.append(case("resize10_linear", "Resize", 10, x45, dict(mode="linear"), [np.array([1, 1, 2, 1.5], F)]))
    c.append(case("resize13_cubic_align_corners_exclude_outside", "Resize", 13, x45,
                  dict(mode="cubic", coordinate_transformation_mode="align_corners", exclude_outside=1, cubic_coeff_a=-0.5),
                  [None, None, np.array([1, 2, 7, 3], I64)],
                  ref=lambda x: onnx_resize_ref(x, "cubic", A=-0.5, output_size=[1, 2, 7, 3], coordinate_transformation_mode="align_corners", exclude_outside=True)))
    c.append(case("resize13_nearest_ceil_pytorch_half_pixel", "Resize", 13, x45,
                  dict(mode="nearest", coordinate_transformation_mode="pytorch_half_pixel", nearest_mode="ceil"),
                  [None, None, np.array([1, 2, 3, 9], I64)],
                  ref=lambda x: onnx_resize_ref(x, "nearest", nearest_mode="ceil", output_size=[1, 2, 3, 9], coordinate_transformation_mode="pytorch_half_pixel")))
    c.append(case("resize13_channel_axis", "Resize", 13, x45, dict(mode="nearest"), [None, np.array([1, 2, 1, 1], F)],
                  ref=lambda x: onnx_resize_ref(x, "nearest", scale_factors=np.array([1, 2, 1, 1], F))))
    c.append(case("resize11_crop_extrapolate", "Resize", 11, rnd(4, 1, 1, 4, 4),
                  dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=10.0),
                  [np.array([0, 0, 0.4, 0.6, 1, 1, 1.2, 1.7], F), np.array([], F), np.array([1, 1, 3, 3], I64)],
                  ref=lambda x: onnx_resize_ref(x, "linear", output_size=[1, 1, 3, 3], roi=np.array([0, 0, 0.4, 0.6, 1, 1, 1.2, 1.7], F),
                                                coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=10.0)))
    c.append(case("resize13_crop_scales", "Resize", 13, rnd(44, 1, 1, 6, 5),
                  dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize"),
                  [np.array([0, 0, 0.2, 0.1, 1, 1, 0.9, 0.8], F), np.array([1, 1, 2, 1.5], F)],
                  note="with scales: output floor(in * scale) = 12x7 as ORT and the onnx reference compute it (the spec text also multiplies by the roi extent); coordinates over the integer output length as ORT (the 1.12 reference uses scale * in)"))
    c.append(case("resize13_trilinear", "Resize", 13, rnd(5, 1, 1, 3, 4, 5), dict(mode="linear"),
                  [None, np.array([1, 1, 2, 1.5, 0.6], F)],
                  ref=lambda x: onnx_resize_ref(x, "linear", scale_factors=np.array([1, 1, 2, 1.5, 0.6], F))))
    c.append(case("resize13_bicubic_torch", "Resize", 13, x45, dict(mode="cubic", coordinate_transformation_mode="half_pixel"),
                  [None, None, np.array([1, 2, 9, 7], I64)],
                  torch_ref=lambda x: TF.interpolate(x, size=(9, 7), mode="bicubic", align_corners=False)))
    # ---- Upsample ----
    c.append(case("upsample7_linear", "Upsample", 7, rnd(6, 1, 2, 3, 4), dict(mode="linear", scales=[1.0, 1.0, 2.0, 3.0])))
    c.append(case("upsample9_nearest_fractional", "Upsample", 9, rnd(7, 1, 2, 3, 4), dict(mode="nearest"),
                  [np.array([1, 1, 2.5, 2], F)]))
    # ---- Pad ----
    x34 = rnd(8, 1, 2, 3, 4)
    c.append(case("pad13_negative_crop", "Pad", 13, x34, dict(mode="constant"),
                  [np.array([0, 0, -1, 2, 0, 0, 1, -2], I64), np.array(0.5, F)],
                  ref=lambda x: np.pad(x[:, :, 1:, :2], ((0, 0), (0, 0), (0, 1), (2, 0)), constant_values=0.5)))
    c.append(case("pad13_reflect_wide", "Pad", 13, x34, dict(mode="reflect"), [np.array([0, 0, 2, 3, 0, 1, 2, 3], I64)],
                  ref=lambda x: np.pad(x, ((0, 0), (0, 1), (2, 2), (3, 3)), mode="reflect")))
    c.append(case("pad13_edge_3d", "Pad", 13, rnd(9, 2, 3, 4), dict(mode="edge"), [np.array([1, 0, 2, 0, 3, 1], I64)],
                  ref=lambda x: np.pad(x, ((1, 0), (0, 3), (2, 1)), mode="edge")))
    c.append(case("pad18_axes_negative", "Pad", 18, x34, dict(mode="constant"),
                  [np.array([1, 2, 3, 0], I64), np.array(-1.0, F), np.array([-1, 1], I64)],
                  ref=lambda x: np.pad(x, ((0, 0), (2, 0), (0, 0), (1, 3)), constant_values=-1)))
    c.append(case("pad19_wrap", "Pad", 19, x34, dict(mode="wrap"), [np.array([0, 0, 2, 3, 0, 0, 1, 4], I64)],
                  ref=lambda x: np.pad(x, ((0, 0), (0, 0), (2, 1), (3, 4)), mode="wrap")))
    c.append(case("pad2_attributes", "Pad", 2, x34, dict(mode="constant", pads=[0, 1, 1, 0, 0, 0, 2, 1], value=3.0),
                  ref=lambda x: np.pad(x, ((0, 0), (1, 0), (1, 2), (0, 1)), constant_values=3)))
    # ---- ConvTranspose ----
    w1 = rnd(11, 4, 3, 3, 2) * 0.5
    b1 = rnd(12, 6)
    c.append(case("convtranspose_group_dilation_outpad", "ConvTranspose", 11, rnd(10, 1, 4, 5, 4),
                  dict(group=2, strides=[2, 3], dilations=[2, 1], output_padding=[1, 2], pads=[1, 0, 0, 1]), [w1, b1],
                  torch_ref=lambda x: TF.conv_transpose2d(x, torch.from_numpy(w1), torch.from_numpy(b1), stride=(2, 3), padding=0,
                                                          output_padding=(1, 2), groups=2, dilation=(2, 1))[:, :, 1:, :-1]))
    w2 = rnd(14, 3, 2, 4, 4) * 0.5
    c.append(case("convtranspose_same_lower", "ConvTranspose", 11, rnd(13, 2, 3, 3, 5), dict(auto_pad="SAME_LOWER", strides=[2, 2]), [w2]))
    w3 = rnd(16, 3, 2, 3) * 0.5
    c.append(case("convtranspose_1d_output_shape", "ConvTranspose", 11, rnd(15, 2, 3, 7), dict(strides=[2], output_shape=[16]), [w3]))
    w4 = rnd(18, 4, 1, 2, 2, 2) * 0.5
    c.append(case("convtranspose_3d_group", "ConvTranspose", 11, rnd(17, 1, 4, 3, 3, 2),
                  dict(group=2, strides=[2, 1, 2], pads=[1, 0, 0, 0, 1, 1]), [w4, rnd(19, 2)]))
    # ---- pooling ----
    x67 = rnd(20, 1, 2, 6, 7)
    c.append(case("maxpool_ceil_pads", "MaxPool", 12, x67, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
                  torch_ref=lambda x: TF.max_pool2d(x, 3, 2, padding=1, ceil_mode=True)))
    c.append(case("maxpool_ceil_drops_window_in_padding", "MaxPool", 12, rnd(21, 1, 1, 5, 5),
                  dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
                  torch_ref=lambda x: TF.max_pool2d(x, 2, 2, padding=1, ceil_mode=True),
                  note="the 4th window would start in the end padding: 3x3 (PyTorch's rule)"))
    c.append(case("maxpool_dilation_pads_indices", "MaxPool", 12, x67,
                  dict(kernel_shape=[2, 3], dilations=[2, 1], pads=[1, 1, 0, 1], strides=[1, 2]), outputs=2))
    c.append(case("maxpool_3d_indices", "MaxPool", 12, rnd(22, 1, 2, 4, 3, 5), dict(kernel_shape=[2, 2, 3], strides=[2, 1, 2]), outputs=2,
                  torch_ref=lambda x: TF.max_pool3d(x, (2, 2, 3), (2, 1, 2))))
    c.append(case("averagepool_ceil_count_pad", "AveragePool", 11, x67,
                  dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
                  torch_ref=lambda x: TF.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=True)))
    c.append(case("averagepool_ceil_exclude_pad", "AveragePool", 11, x67,
                  dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
                  torch_ref=lambda x: TF.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=False)))
    c.append(case("averagepool19_dilations", "AveragePool", 19, x67, dict(kernel_shape=[2, 2], dilations=[2, 3], pads=[1, 0, 1, 1])))
    c.append(case("averagepool_same_lower_count_pad", "AveragePool", 11, x67,
                  dict(kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_LOWER", count_include_pad=1)))
    c.append(case("globalmaxpool_1d", "GlobalMaxPool", 1, rnd(23, 2, 3, 7)))
    c.append(case("globalaveragepool_3d", "GlobalAveragePool", 1, rnd(24, 2, 3, 2, 3, 4)))
    # ---- normalisation ----
    p3 = lambda s, off=0.0: (np.abs(rnd(s, 3)) + off).astype(F)
    c.append(case("batchnorm9_rank3", "BatchNormalization", 9, rnd(25, 2, 3, 5), dict(epsilon=1e-3),
                  [p3(26, 0.5), rnd(27, 3), rnd(28, 3), p3(29, 0.1)]))
    c.append(case("batchnorm7_rank2", "BatchNormalization", 7, rnd(30, 4, 3), dict(spatial=1),
                  [p3(31, 0.5), rnd(32, 3), rnd(33, 3), p3(34, 0.1)]))
    c.append(case("instancenorm_rank3_groupnorm_view", "InstanceNormalization", 6, rnd(35, 2, 4, 10) * 3 + 5, dict(epsilon=1e-5),
                  [np.ones(4, F), np.zeros(4, F)], note="GroupNorm as torch exports it: (B, groups, -1), scale 1, bias 0"))
    c.append(case("layernorm_axis1_broadcast_params", "LayerNormalization", 17, rnd(36, 2, 3, 4), dict(axis=1, epsilon=1e-3),
                  [rnd(37, 4), rnd(38, 3, 1)], outputs=3))
    c.append(case("layernorm_no_bias", "LayerNormalization", 17, rnd(42, 3, 5), dict(axis=-1), [rnd(43, 5)]))
    # ---- DepthToSpace / SpaceToDepth ----
    c.append(case("depthtospace_crd_block3", "DepthToSpace", 13, rnd(39, 1, 18, 2, 3), dict(blocksize=3, mode="CRD")))
    c.append(case("depthtospace_dcr_block3", "DepthToSpace", 13, rnd(40, 2, 9, 2, 2), dict(blocksize=3)))
    c.append(case("spacetodepth_block3", "SpaceToDepth", 13, rnd(41, 1, 2, 6, 3), dict(blocksize=3)))
    return c


def build(cs, out_dir):
    feeds = [f"x{i}" for i in range(len(cs["x"]))]
    inits, node_in = [], list(feeds)
    consts = list(cs["consts"])
    while consts and consts[-1] is None:
        consts.pop()
    for k, v in enumerate(consts):
        if v is None:
            node_in.append("")
            continue
        name = f"c{k}"
        inits.append(numpy_helper.from_array(v, name))
        node_in.append(name)
    outs = ["y", "y1", "y2"][:cs["outputs"]]
    node = helper.make_node(cs["op"], node_in, outs, name="n", **cs["attrs"])
    vis = [helper.make_tensor_value_info(n, TensorProto.FLOAT, t.shape) for n, t in zip(feeds, cs["x"])]
    out_vis = [helper.make_tensor_value_info(o, TensorProto.FLOAT if i != 1 or cs["op"] != "MaxPool" else TensorProto.INT64, None)
               for i, o in enumerate(outs)]
    graph = helper.make_graph([node], cs["name"], vis, out_vis, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", cs["opset"])], producer_name="conv_cases.py")
    model.ir_version = 7 if cs["opset"] < 14 else 8
    d = os.path.join(out_dir, cs["name"])
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, (n, t) in enumerate(zip(feeds, cs["x"])):
        with open(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(t, n).SerializeToString())
    return d, outs


ORT_JS = r"""
const path = require('path');
const fs = require('fs');
function load() {
  const roots = [path.join(process.argv[3], 'node_modules')].concat((process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean));
  for (const r of roots) { try { return require(path.join(r, 'onnxruntime-node')); } catch (e) {} }
  return require('onnxruntime-node');
}
const ort = load();
(async () => {
  const jobs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const res = {};
  for (const j of jobs) {
    try {
      const s = await ort.InferenceSession.create(j.model, {intraOpNumThreads: 1});
      const feeds = {};
      for (const f of j.feeds) feeds[f.name] = new ort.Tensor('float32', Float32Array.from(f.data), f.shape);
      const out = await s.run(feeds);
      res[j.name] = {};
      for (const o of j.outputs) {
        const t = out[o];
        res[j.name][o] = {type: t.type, dims: t.dims, data: Array.from(t.data, (v) => (typeof v === 'bigint' ? v.toString() : v))};
      }
    } catch (e) {
      res[j.name] = {error: String(e.message || e).split('\n')[0]};
    }
  }
  process.stdout.write(JSON.stringify(res));
})();
"""


def run_ort(jobs, tmp):
    return provenance.run_ort_jobs(jobs, tmp, ORT_JS)


def close(a, b):
    return a.shape == b.shape and bool(np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=1e-3, atol=1e-6))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", "conv-cases"))
    args = ap.parse_args()
    # Cases are rewritten from scratch; README.md stays.
    os.makedirs(args.out, exist_ok=True)
    for e in os.listdir(args.out):
        p = os.path.join(args.out, e)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif e == "manifest.json":
            os.remove(p)
    built, jobs = {}, []
    for cs in cases():
        d, outs = build(cs, args.out)
        built[cs["name"]] = (cs, d, outs)
        jobs.append(dict(name=cs["name"], model=os.path.join(d, "model.onnx"), outputs=outs,
                         feeds=[dict(name=f"x{i}", shape=list(t.shape), data=t.reshape(-1).tolist()) for i, t in enumerate(cs["x"])]))
    with tempfile.TemporaryDirectory() as tmp:
        ort = run_ort(jobs, tmp)
    manifest = dict(command=COMMAND, onnxruntime=ORT_VERSION, torch=torch.__version__, onnx=onnx.__version__, cases=[])
    failed = False
    for name, (cs, d, outs) in built.items():
        r = ort[name]
        entry = dict(name=name, op=cs["op"], opset=cs["opset"], attrs={k: v for k, v in cs["attrs"].items()}, expect=cs["expect"], note=cs["note"])
        if "error" in r:
            print(f"{name}: ONNX Runtime refuses it: {r['error']}", file=sys.stderr)
            failed = True
            continue
        arrays = []
        for o in outs:
            t = r[o]
            a = np.array([int(v) for v in t["data"]], I64) if t["type"] == "int64" else np.array(t["data"], F)
            arrays.append(a.reshape(t["dims"]))
        checks = []
        if cs["torch_ref"] is not None:
            want = cs["torch_ref"](torch.from_numpy(cs["x"][0])).numpy()
            checks.append(("pytorch " + torch.__version__, close(arrays[0], want)))
        if cs["ref"] is not None:
            want = cs["ref"](cs["x"][0])
            checks.append(("onnx reference", close(arrays[0], want)))
        for who, ok in checks:
            if not ok:
                print(f"{name}: ONNX Runtime and {who} disagree", file=sys.stderr)
                failed = True
        entry["cross_checked_with"] = [who for who, _ in checks]
        for k, (o, a) in enumerate(zip(outs, arrays)):
            with open(os.path.join(d, "test_data_set_0", f"output_{k}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(a, o).SerializeToString())
        entry["output_shapes"] = [list(a.shape) for a in arrays]
        manifest["cases"].append(entry)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"{len(manifest['cases'])} cases in {args.out}", file=sys.stderr)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
