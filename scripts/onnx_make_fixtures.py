#!/usr/bin/python3
"""Write fixtures/onnx: small ConvLSTMs exported by torch.onnx.export.

Run from the repository root with Debian's PyTorch:

    /usr/bin/python3 scripts/onnx_make_fixtures.py

For every case it writes fixtures/onnx/<name>.onnx, <name>.input.npy (the
graph's input, possibly of a size other than the one used at export when the
axes are dynamic) and <name>.ref.npz holding PyTorch's output of the same
module for that input under the graph's output names. graph/ tests run the
.onnx on the .npy and compare with the .npz.
"""

import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import ConvLSTM  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "onnx")


class Wrap(nn.Module):
    """Returns the last layer's sequence and every layer's final (h, c), the
    outputs convlstm-run writes."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        outs, states = self.m(x)
        res = [outs[-1]]
        for h, c in states:
            res += [h, c]
        return tuple(res)


def make(name, opset, dynamic, gates="ifog", bias=True, batch_first=True,
         export_shape=(1, 3, 2, 5, 6), run_shape=None, external=False, seed=0,
         hidden=(3, 2), kernels=((3, 3), (1, 3)), **export_kw):
    torch.manual_seed(seed)
    m = ConvLSTM(2, list(hidden), [tuple(k) for k in kernels], 2, batch_first=batch_first, bias=bias,
                 return_all_layers=True, gates=gates).eval()
    w = Wrap(m).eval()
    x = torch.randn(*export_shape)
    names_out = ["output", "h_0", "c_0", "h_1", "c_1"]
    dyn = None
    if dynamic:
        # batch, height and width; time is unrolled by tracing, so it stays.
        ax = {0: "batch", 3: "height", 4: "width"} if batch_first else {1: "batch", 3: "height", 4: "width"}
        dyn = {"input": ax, "output": {0: "batch", 3: "height", 4: "width"}}
        for n in names_out[1:]:
            dyn[n] = {0: "batch", 2: "height", 3: "width"}
    path = os.path.join(OUT, name + ".onnx")
    with torch.no_grad():
        torch.onnx.export(w, (x,), path, opset_version=opset, input_names=["input"],
                          output_names=names_out, dynamic_axes=dyn,
                          **dict(dict(do_constant_folding=True), **export_kw))
    if external:
        import onnx
        mp = onnx.load(path)
        # onnx appends to an existing data file: start from an empty one.
        wpath = os.path.join(OUT, name + ".weights")
        if os.path.exists(wpath):
            os.remove(wpath)
        onnx.save_model(mp, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=name + ".weights", size_threshold=0)
    xr = x if run_shape is None else torch.randn(*run_shape)
    with torch.no_grad():
        ref = w(xr)
    np.save(os.path.join(OUT, name + ".input.npy"), xr.numpy().astype(np.float32))
    np.savez(os.path.join(OUT, name + ".ref.npz"), **{n: r.numpy() for n, r in zip(names_out, ref)})
    import onnx
    mp = onnx.load(path)
    onnx.checker.check_model(mp)
    ops = sorted({n.op_type for n in mp.graph.node})
    print("%-28s opset %2d dynamic=%-5s nodes=%4d ops=%s" % (name, opset, dynamic, len(mp.graph.node), ",".join(ops)))


ST_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "safetensors")


def write_safetensors(path, tensors, metadata, dtype):
    """A safetensors writer (the Python package is not in Debian): 8-byte
    little-endian header length, JSON header padded with spaces to 8 bytes,
    then the tensors' bytes in header order."""
    import json
    import struct
    codes = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        t = t.detach().to(dtype).contiguous()
        # bfloat16 has no numpy dtype: take its bits through int16.
        b = t.view(torch.int16).numpy().tobytes() if dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": codes[dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def make_safetensors():
    """fixtures/safetensors: model.pt (torch.save of a state_dict, gate order
    ifgo), input.npy, ref.npz (PyTorch's outputs); and model_<dtype>.safetensors
    written from the same state_dict in F32, F16, BF16 and F64 with
    gate_order=ifgo in __metadata__, each with ref_<dtype>.npz computed from
    the weights as stored (rounded to that dtype)."""
    os.makedirs(ST_OUT, exist_ok=True)
    torch.manual_seed(42)
    m = ConvLSTM(3, [4, 2], [(3, 3), (3, 1)], 2, batch_first=True, bias=True,
                 return_all_layers=True, gates="ifgo").eval()
    sd = m.state_dict()
    torch.save(sd, os.path.join(ST_OUT, "model.pt"))
    x = torch.randn(2, 4, 3, 5, 4)
    np.save(os.path.join(ST_OUT, "input.npy"), x.numpy())
    w = Wrap(m).eval()
    names = ["output", "h_0", "c_0", "h_1", "c_1"]
    with torch.no_grad():
        np.savez(os.path.join(ST_OUT, "ref.npz"), **{n: r.numpy() for n, r in zip(names, w(x))})
    meta = {"gate_order": "ifgo", "format": "pt"}
    for dtype, tag in ((torch.float32, "f32"), (torch.float16, "f16"), (torch.bfloat16, "bf16"), (torch.float64, "f64")):
        write_safetensors(os.path.join(ST_OUT, "model_%s.safetensors" % tag), sd, meta, dtype)
        m2 = ConvLSTM(3, [4, 2], [(3, 3), (3, 1)], 2, batch_first=True, bias=True,
                      return_all_layers=True, gates="ifgo").eval()
        m2.load_state_dict({k: v.to(dtype).float() for k, v in sd.items()})
        with torch.no_grad():
            np.savez(os.path.join(ST_OUT, "ref_%s.npz" % tag),
                     **{n: r.numpy() for n, r in zip(names, Wrap(m2)(x))})
    print("safetensors fixtures written to", ST_OUT)


def main():
    os.makedirs(OUT, exist_ok=True)
    make_safetensors()
    print("torch", torch.__version__)
    for opset in (11, 13, 17):
        make("static_op%d" % opset, opset, False, seed=opset)
        make("dynamic_op%d" % opset, opset, True, seed=100 + opset,
             run_shape=(2, 3, 2, 4, 7))
    make("fiog_nobias_op13", 13, True, gates="fiog", bias=False, seed=7, run_shape=(1, 3, 2, 6, 3))
    make("timefirst_op17", 17, True, batch_first=False, seed=8, export_shape=(3, 1, 2, 5, 6),
         run_shape=(3, 2, 2, 3, 4))
    make("external_op13", 13, False, seed=9, external=True)
    # Initialisers also listed as graph inputs (the pre-IR-4 style), and no
    # constant folding (the shape arithmetic is left in the graph).
    make("initinputs_op11", 11, True, seed=10, run_shape=(2, 3, 2, 3, 3),
         keep_initializers_as_inputs=True)
    make("nofold_op13", 13, True, seed=11, run_shape=(1, 3, 2, 4, 4), do_constant_folding=False)
    # Wide enough (input + hidden >= 8 channels, 3x3) for graph/'s Winograd
    # path, with odd image sizes.
    make("wide_op17", 17, True, seed=12, hidden=(8, 6), kernels=((3, 3), (3, 3)),
         run_shape=(2, 3, 2, 7, 5))


if __name__ == "__main__":
    main()
