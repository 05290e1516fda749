#!/usr/bin/python3
"""Writes the example bundled into convlstm-run (used when `run` gets no
--weights/--input) and PyTorch's outputs for it.

    /usr/bin/python3 scripts/make_example.py

cmd/convlstm-run/example/model.pt   a 2-layer ConvLSTM (1 -> 8 -> 8 channels,
                                    3x3 kernels), PyTorch's default init, seed 0
                                    (untrained: it shows the pipeline, not a skill)
cmd/convlstm-run/example/input.npy  (1, 10, 1, 32, 32): a bright square moving
                                    diagonally over a noisy background
fixtures/example/expected.npz       PyTorch's final states h_l, c_l (the last
                                    layer's h is its output at the last step;
                                    the full sequence is left out to keep the
                                    fixture small)
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import ConvLSTM, reference_outputs  # noqa: E402

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
torch.manual_seed(0)
model = ConvLSTM(1, [8, 8], (3, 3), 2, batch_first=True, bias=True)
rng = np.random.default_rng(0)
x = 0.1 * rng.standard_normal((1, 10, 1, 32, 32)).astype(np.float32)
for t in range(10):
    y0 = x0 = 4 + 2 * t
    x[0, t, 0, y0:y0 + 6, x0:x0 + 6] += 1.0

ex = os.path.join(root, "cmd", "convlstm-run", "example")
os.makedirs(ex, exist_ok=True)
torch.save(model.state_dict(), os.path.join(ex, "model.pt"))
np.save(os.path.join(ex, "input.npy"), x)
out = reference_outputs(model, x)
os.makedirs(os.path.join(root, "fixtures", "example"), exist_ok=True)
np.savez(os.path.join(root, "fixtures", "example", "expected.npz"),
         **{k: v for k, v in out.items() if k != "output"})
print("wrote", ex, "and fixtures/example/expected.npz with torch", torch.__version__)
