#!/usr/bin/python3
"""PyTorch reference ConvLSTM: the spec that the Go runtime replays.

Semantics follow ndrplz/ConvLSTM_pytorch (the ConvLSTM most checkpoints in the
wild were trained with), extended in two ways:

* ``gates``: the order of the four chunks that the cell's convolution output
  is split into.  The default "ifog" is the original (cc_i, cc_f, cc_o, cc_g);
  any permutation of the letters i, f, o, g is accepted, e.g. "fiog".
* ``hidden_state``: ConvLSTM.forward accepts an initial (h, c) per layer (the
  original raises NotImplementedError for it).

State-dict keys are the original's: ``cell_list.{l}.conv.weight|bias``, so a
checkpoint trained with the original loads into this class unchanged.

Run this file directly (``/usr/bin/python3 scripts/reference.py``) for a
self-check against an independent, functional restatement of the original's
forward pass (``--original PATH/convlstm.py`` also compares bitwise with the
original's code, which this project does not ship).

``/usr/bin/python3 scripts/reference.py run --weights W --input X.npy --output
OUT.npz [--gates G] [--time-first] [--all-layers] [--state-in S.npz] [--prefix
P]`` is a PyTorch stand-in for ``convlstm-run run`` (same flags, same OUT.npz),
used to check the fixtures from their files alone and to test parity.py.

The CLI-facing helpers at the bottom (``reference_outputs``) produce the
tensors ``convlstm-run run`` writes to its OUT.npz: ``output`` (last layer's
sequence in the input's layout), ``h_l``/``c_l`` (final state of every layer)
and, with all_layers, ``output_l`` for every layer (also in the input's
layout).  Everything is computed in float32.
"""

import copy
import itertools
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

GATE_LETTERS = "ifog"


def check_gates(gates):
    if sorted(gates) != sorted(GATE_LETTERS):
        raise ValueError("gates must be a permutation of 'ifog', got %r" % (gates,))
    return gates


def _pair(k):
    if isinstance(k, int):
        return (k, k)
    k = tuple(k)
    if len(k) != 2:
        raise ValueError("kernel size must be an int or a pair, got %r" % (k,))
    return k


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell: a single convolution over cat([x, h]) gives the four
    gate pre-activations, split in the order given by ``gates``."""

    def __init__(self, input_dim, hidden_dim, kernel_size, bias=True, gates="ifog"):
        super().__init__()
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.kernel_size = _pair(kernel_size)
        self.padding = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
        self.bias = bias
        self.gates = check_gates(gates)
        self.conv = nn.Conv2d(
            in_channels=input_dim + hidden_dim,
            out_channels=4 * hidden_dim,
            kernel_size=self.kernel_size,
            padding=self.padding,
            bias=bias,
        )

    def forward(self, input_tensor, cur_state):
        h_cur, c_cur = cur_state
        combined = torch.cat([input_tensor, h_cur], dim=1)
        combined_conv = self.conv(combined)
        chunks = dict(zip(self.gates, torch.split(combined_conv, self.hidden_dim, dim=1)))
        i = torch.sigmoid(chunks["i"])
        f = torch.sigmoid(chunks["f"])
        o = torch.sigmoid(chunks["o"])
        g = torch.tanh(chunks["g"])
        c_next = f * c_cur + i * g
        h_next = o * torch.tanh(c_next)
        return h_next, c_next

    def init_hidden(self, batch_size, image_size):
        height, width = image_size
        w = self.conv.weight
        return (
            torch.zeros(batch_size, self.hidden_dim, height, width, device=w.device, dtype=w.dtype),
            torch.zeros(batch_size, self.hidden_dim, height, width, device=w.device, dtype=w.dtype),
        )


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM with the original's constructor and forward.

    input_dim: channels of the input; hidden_dim: int or list (one per
    layer); kernel_size: int, pair, or list of those (one per layer).
    forward(input, hidden_state=None) -> (layer_output_list, last_state_list)
    exactly like the original: outputs are (B, T, C, H, W) whatever
    batch_first is, and only the last layer is returned unless
    return_all_layers.
    """

    def __init__(self, input_dim, hidden_dim, kernel_size, num_layers,
                 batch_first=False, bias=True, return_all_layers=False, gates="ifog"):
        super().__init__()
        if not isinstance(kernel_size, list):
            kernel_size = [kernel_size] * num_layers
        if not isinstance(hidden_dim, list):
            hidden_dim = [hidden_dim] * num_layers
        if not len(kernel_size) == len(hidden_dim) == num_layers:
            raise ValueError("Inconsistent list length.")
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.kernel_size = [_pair(k) for k in kernel_size]
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.bias = bias
        self.return_all_layers = return_all_layers
        self.gates = check_gates(gates)
        cell_list = []
        for i in range(num_layers):
            cur_input_dim = input_dim if i == 0 else hidden_dim[i - 1]
            cell_list.append(ConvLSTMCell(cur_input_dim, hidden_dim[i], self.kernel_size[i], bias, gates))
        self.cell_list = nn.ModuleList(cell_list)

    def forward(self, input_tensor, hidden_state=None):
        if not self.batch_first:
            # (t, b, c, h, w) -> (b, t, c, h, w)
            input_tensor = input_tensor.permute(1, 0, 2, 3, 4)
        b, _, _, h, w = input_tensor.size()
        if hidden_state is None:
            hidden_state = self._init_hidden(batch_size=b, image_size=(h, w))
        elif len(hidden_state) != self.num_layers:
            raise ValueError("hidden_state has %d layers, the model %d" % (len(hidden_state), self.num_layers))

        layer_output_list = []
        last_state_list = []
        seq_len = input_tensor.size(1)
        cur_layer_input = input_tensor
        for layer_idx in range(self.num_layers):  # layer loop outer ...
            h, c = hidden_state[layer_idx]
            output_inner = []
            for t in range(seq_len):  # ... time loop inner, as in the original
                h, c = self.cell_list[layer_idx](input_tensor=cur_layer_input[:, t, :, :, :], cur_state=[h, c])
                output_inner.append(h)
            layer_output = torch.stack(output_inner, dim=1)
            cur_layer_input = layer_output
            layer_output_list.append(layer_output)
            last_state_list.append([h, c])

        if not self.return_all_layers:
            layer_output_list = layer_output_list[-1:]
            last_state_list = last_state_list[-1:]
        return layer_output_list, last_state_list

    def _init_hidden(self, batch_size, image_size):
        return [cell.init_hidden(batch_size, image_size) for cell in self.cell_list]


# ---------------------------------------------------------------------------
# Building a reference model from weights found in a file.

def cell_shape(weight, bias=None):
    """(input_dim, hidden_dim, (kh, kw)) of a cell from its conv weight."""
    rows, cols, kh, kw = weight.shape
    if rows % 4:
        raise ValueError("conv weight has %d rows, not a multiple of 4" % rows)
    hidden = rows // 4
    return cols - hidden, hidden, (kh, kw)


def model_from_state_dict(sd, prefix="", gates="ifog", batch_first=True, return_all_layers=True):
    """A float32 ConvLSTM built from the tensors under ``prefix`` in sd.

    Finds ``prefix.cell_list.{l}.conv.*`` (a ConvLSTM) or, failing that,
    ``prefix.conv.*`` (a single cell, run as a one-layer ConvLSTM).  Weights
    of any floating dtype are converted with ``.float()``.
    """
    p = prefix + "." if prefix else ""
    weights = []
    for l in itertools.count():
        w = sd.get("%scell_list.%d.conv.weight" % (p, l))
        if w is None:
            break
        weights.append((w, sd.get("%scell_list.%d.conv.bias" % (p, l))))
    if not weights:
        w = sd.get(p + "conv.weight")
        if w is None:
            raise KeyError("no ConvLSTM under prefix %r" % prefix)
        weights.append((w, sd.get(p + "conv.bias")))
    has_bias = weights[0][1] is not None
    if any((b is not None) != has_bias for _, b in weights):
        raise ValueError("some layers have a bias and some do not")
    shapes = [cell_shape(w) for w, _ in weights]
    model = ConvLSTM(
        input_dim=shapes[0][0],
        hidden_dim=[s[1] for s in shapes],
        kernel_size=[s[2] for s in shapes],
        num_layers=len(shapes),
        batch_first=batch_first,
        bias=has_bias,
        return_all_layers=return_all_layers,
        gates=gates,
    )
    with torch.no_grad():
        for cell, (w, b) in zip(model.cell_list, weights):
            cell.conv.weight.copy_(w.float())
            if b is not None:
                cell.conv.bias.copy_(b.float())
    return model.float().eval()


# ---------------------------------------------------------------------------
# What `convlstm-run run` writes, computed by PyTorch.

@torch.no_grad()
def reference_outputs(model, x, time_first=False, state_in=None, all_layers=False, dtype=torch.float32):
    """The CLI's OUT.npz content as a dict of float32 numpy arrays.

    model: a ConvLSTM (its weights are used as float32); x: the input array
    as stored in input.npy (any float dtype, any memory order), (B,T,C,H,W)
    or, with time_first, (T,B,C,H,W); state_in: None or a dict with h_l/c_l
    of shape (B, hidden_l, H, W) for every layer.

    dtype=torch.float64 runs the same float32 weights, input and state in
    float64 (for measuring float32 rounding noise); arrays are then float64.
    """
    import numpy as np

    model = copy.deepcopy(model).float().to(dtype).eval()
    model.batch_first, model.return_all_layers = (not time_first), True

    def tensor(a):  # the stored values, rounded to float32 first as the CLI reads them
        return torch.from_numpy(np.ascontiguousarray(np.asarray(a).astype(np.float32))).to(dtype)

    hidden = None
    if state_in is not None:
        hidden = [(tensor(state_in["h_%d" % l]), tensor(state_in["c_%d" % l])) for l in range(model.num_layers)]
    outs, states = model(tensor(x), hidden)

    def arr(t):
        return np.ascontiguousarray(t.numpy())

    def layout(o):  # model outputs are (B,T,...); the CLI writes the input's layout
        return arr(o.permute(1, 0, 2, 3, 4) if time_first else o)

    res = {"output": layout(outs[-1])}
    for l, (h, c) in enumerate(states):
        res["h_%d" % l] = arr(h)
        res["c_%d" % l] = arr(c)
    if all_layers:
        for l, o in enumerate(outs):
            res["output_%d" % l] = layout(o)
    return res


# ---------------------------------------------------------------------------
# A Python stand-in for `convlstm-run run`, following the CLI contract: used
# to check the fixtures from their files alone and to test parity.py.

def flatten_tensors(obj, prefix=""):
    """{dotted.name: tensor} for every tensor in a loaded file: nested dicts
    (checkpoint wrappers) are joined with '.', a pickled nn.Module gives its
    state_dict."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten_tensors(v, prefix + str(k) + "."))
    elif torch.is_tensor(obj):
        out[prefix[:-1]] = obj
    return out


def find_convlstm(flat, prefix=None):
    """The prefix of the one ConvLSTM (cell_list) or single cell in flat."""
    import re

    if prefix is not None:
        p = prefix + "." if prefix else ""
        if p + "cell_list.0.conv.weight" in flat or p + "conv.weight" in flat:
            return prefix
        raise KeyError("no ConvLSTM or cell under prefix %r" % prefix)
    stacks, cells = set(), set()
    for k, v in flat.items():
        m = re.fullmatch(r"(?:(.*)\.)?cell_list\.\d+\.conv\.weight", k)
        if m:
            stacks.add(m.group(1) or "")
            continue
        m = re.fullmatch(r"(?:(.*)\.)?conv\.weight", k)
        if m and v.dim() == 4 and v.shape[0] % 4 == 0:
            cells.add(m.group(1) or "")
    found = sorted(stacks) or sorted(cells)
    if len(found) != 1:
        raise KeyError("%d ConvLSTMs found (%s): give --prefix" % (len(found), ", ".join(found)))
    return found[0]


def cli_main(argv):
    import argparse
    import numpy as np

    ap = argparse.ArgumentParser(prog="reference.py run")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--gates", default="ifog")
    ap.add_argument("--time-first", action="store_true")
    ap.add_argument("--all-layers", action="store_true")
    ap.add_argument("--state-in")
    ap.add_argument("--prefix")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    flat = flatten_tensors(torch.load(a.weights, map_location="cpu"))
    model = model_from_state_dict(flat, find_convlstm(flat, a.prefix), gates=a.gates)
    state = dict(np.load(a.state_in)) if a.state_in else None
    res = reference_outputs(model, np.load(a.input), time_first=a.time_first, state_in=state,
                            all_layers=a.all_layers)
    np.savez(a.output, **res)


# ---------------------------------------------------------------------------
# Self-check against an independent restatement of the original's maths.

def _functional_convlstm(x_btchw, weights, gates="ifog"):
    """Plain functional ConvLSTM, zero initial state: weights is a list of
    (weight, bias-or-None).  Written independently of the classes above."""
    order = [gates.index(g) for g in "ifog"]
    seq = [x_btchw[:, t] for t in range(x_btchw.shape[1])]
    finals = []
    for w, b in weights:
        hid = w.shape[0] // 4
        kh, kw = w.shape[2], w.shape[3]
        B, _, H, W = seq[0].shape
        h = x_btchw.new_zeros(B, hid, H, W)
        c = x_btchw.new_zeros(B, hid, H, W)
        out = []
        for xt in seq:
            z = F.conv2d(torch.cat([xt, h], 1), w, b, padding=(kh // 2, kw // 2))
            zs = [z[:, k * hid:(k + 1) * hid] for k in range(4)]
            zi, zf, zo, zg = (zs[k] for k in order)
            c = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)
            h = torch.sigmoid(zo) * torch.tanh(c)
            out.append(h)
        seq = out
        finals.append((h, c))
    return torch.stack(seq, 1), finals


@torch.no_grad()
def self_check(verbose=True):
    torch.manual_seed(1234)
    worst = 0.0
    for gates in ["ifog", "fiog", "ifgo", "gofi"]:
        for batch_first in (True, False):
            m = ConvLSTM(3, [4, 5, 2], [(3, 3), (5, 1), (1, 3)], 3, batch_first=batch_first,
                         bias=(gates != "gofi"), return_all_layers=True, gates=gates)
            x = torch.randn(2, 4, 3, 6, 7)  # B,T,C,H,W
            outs, states = m(x if batch_first else x.permute(1, 0, 2, 3, 4))
            ws = [(c.conv.weight, c.conv.bias) for c in m.cell_list]
            ref_out, ref_states = _functional_convlstm(x, ws, gates)
            d = (outs[-1] - ref_out).abs().max().item()
            for (h, c), (rh, rc) in zip(states, ref_states):
                d = max(d, (h - rh).abs().max().item(), (c - rc).abs().max().item())
            assert d < 1e-6, (gates, batch_first, d)
            worst = max(worst, d)
    # An initial state equal to zeros must give the same as no state.
    m = ConvLSTM(2, [3, 3], (3, 3), 2, batch_first=True)
    x = torch.randn(1, 3, 2, 5, 5)
    a = m(x)
    b = m(x, [(torch.zeros(1, 3, 5, 5), torch.zeros(1, 3, 5, 5))] * 2)
    assert torch.equal(a[0][0], b[0][0])
    # A state carried across a split sequence equals one pass over it.
    m.return_all_layers = True
    full_out, _ = m(x)
    _, st = m(x[:, :2])
    part_out, _ = m(x[:, 2:], [tuple(s) for s in st])
    assert (part_out[-1] - full_out[-1][:, 2:]).abs().max().item() < 1e-6
    # The state_dict keys are the original's.
    assert sorted(m.state_dict()) == ["cell_list.0.conv.bias", "cell_list.0.conv.weight",
                                      "cell_list.1.conv.bias", "cell_list.1.conv.weight"]
    if verbose:
        print("reference.py self-check OK (max diff vs functional restatement %.3g)" % worst)
    return worst


@torch.no_grad()
def check_against_original(path, verbose=True):
    """Bitwise comparison with the original ConvLSTM_pytorch module at path
    (its convlstm.py, which this project does not ship): with gates="ifog"
    and no initial state, loading the original's state_dict into ours must
    give identical outputs and states."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("convlstm_original", path)
    orig = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(orig)
    torch.manual_seed(4321)
    n = 0
    for batch_first, all_layers, bias in itertools.product((True, False), repeat=3):
        ks = [(3, 3), (5, 3), (1, 1)]
        o = orig.ConvLSTM(3, [4, 6, 2], ks, 3, batch_first=batch_first, bias=bias,
                          return_all_layers=all_layers)
        r = ConvLSTM(3, [4, 6, 2], ks, 3, batch_first=batch_first, bias=bias,
                     return_all_layers=all_layers, gates="ifog")
        r.load_state_dict(o.state_dict())
        x = torch.randn(2, 5, 3, 7, 6)
        (oo, os_), (ro, rs) = o(x), r(x)
        assert len(oo) == len(ro) and len(os_) == len(rs)
        for a, b in zip(oo, ro):
            assert torch.equal(a, b)
        for a, b in zip(os_, rs):
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        n += 1
    if verbose:
        print("reference.py matches the original at %s bitwise (%d configurations)" % (path, n))


if __name__ == "__main__":
    import argparse

    if sys.argv[1:2] == ["run"]:
        cli_main(sys.argv[2:])
        sys.exit(0)

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--original", metavar="CONVLSTM_PY",
                    help="also compare bitwise with ConvLSTM_pytorch's convlstm.py at this path")
    args = ap.parse_args()
    print("torch", torch.__version__)
    self_check()
    if args.original:
        check_against_original(args.original)
