#!/usr/bin/python3
"""Score the real Moving-MNIST model (PyTorch) on sequences made by our Go generator.

    go run scripts/moving_mnist_npz.go -n 256 -seed 1 -o /tmp/mm.npz
    /usr/bin/python3 scripts/moving_mnist_check.py /tmp/mm.npz \
        [--weights $REAL_CHECKPOINTS/moving-mnist-encdec.pt] [--batch 16]

Reads "sequences" (N, 20, 64, 64) float32 raw pixels 0..255 (package
movingmnist), runs the model on the first 10 frames of each and prints the
per-pixel mean squared error (0..255 scale) of its prediction of the next 10
against the truth, beside copying the last input frame, overall and per
predicted step. This is what `convlstm-run demo` prints, computed by PyTorch:
a check that the Go generator's sequences are what the model was trained on
(Srivastava et al.'s mnist_test_seq.npy) and a reference for the Go demo.

The model (Silver0x10/VideoPrediction_MovingMNIST, MIT) is defined in
scripts/whole_models.py (branch model-fixtures). Until that file lands, the
script falls back to a transcription of the architecture in issue 8 (below,
BuiltinMovingMNIST) and says so; when whole_models.py is present it is used.
"""
import argparse
import hashlib
import json
import os
import platform
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# As scripts/make_fixtures.py finds them: $REAL_CHECKPOINTS, else ../shared/real-checkpoints.
DEFAULT_WEIGHTS = os.path.join(os.environ.get("REAL_CHECKPOINTS", os.path.join(os.path.dirname(REPO), "shared", "real-checkpoints")),
                               "moving-mnist-encdec.pt")


class Cell(nn.Module):
    """ConvLSTM_pytorch's cell: one conv over cat(x, h), gates i, f, o, g."""

    def __init__(self, cin, hidden, k):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(cin + hidden, 4 * hidden, k, padding=k // 2)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = torch.split(self.conv(torch.cat([x, h], 1)), self.hidden, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


def block(cin, cout, act):
    return nn.Sequential(nn.Conv2d(cin, cout, 5, padding=2), nn.BatchNorm2d(cout), act) if act is not None \
        else nn.Sequential(nn.Conv2d(cin, cout, 5, padding=2), nn.Tanh())


class BuiltinMovingMNIST(nn.Module):
    """Issue 8's description of the model, transcribed (fallback only)."""

    def __init__(self):
        super().__init__()
        self.conv1 = block(1, 16, nn.GELU())
        self.conv2 = block(16, 32, nn.GELU())
        self.enc1, self.enc2, self.dec1, self.dec2 = (Cell(32, 32, 5) for _ in range(4))
        self.deconv1 = block(32, 16, nn.GELU())
        self.deconv2 = block(16, 1, None)

    def forward(self, x):  # (B, 10, 64, 64) raw pixels
        x = x.unsqueeze(2)
        B, T, _, H, W = x.shape
        z = lambda: torch.zeros(B, 32, H, W)
        s1, s2, s3, s4 = (z(), z()), (z(), z()), (z(), z()), (z(), z())
        for t in range(T):
            s1 = self.enc1(self.conv2(self.conv1(x[:, t])), s1)
            s2 = self.enc2(s1[0], s2)
        outs = []
        for i in range(T):
            a = self.conv1(x[:, i])
            b = self.conv2(a)
            s1 = self.enc1(b, s1)
            s2 = self.enc2(s1[0], s2)
            s3 = self.dec1(s2[0], s3)
            s4 = self.dec2(s3[0], s4)
            outs.append(self.deconv2(self.deconv1(s4[0] + b) + a) * 10)
        return torch.sigmoid(torch.cat(outs, 1)) * 255


def load_model(weights):
    sys.path.insert(0, HERE)
    try:
        import whole_models  # noqa: F401  (scripts/whole_models.py, branch model-fixtures)
        # TODO(when whole_models.py lands): use its Moving-MNIST class here,
        # e.g. model = whole_models.MovingMNISTEncDec(); the name is not known yet.
        cls = getattr(whole_models, "MovingMNISTEncDec", None)
        source = "scripts/whole_models.py"
    except ImportError:
        cls = None
    if cls is None:
        cls, source = BuiltinMovingMNIST, "issue 8's description (scripts/whole_models.py not found or without MovingMNISTEncDec)"
    model = cls()
    sd = torch.load(weights, map_location="cpu")
    model.load_state_dict(sd)
    return model.eval(), source


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("npz")
    ap.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--save-pred", help="also write the model's prediction (N, 10, 64, 64) float32 to this .npz")
    ap.add_argument("--json", help="also write the figures here (the fixture movingmnist/testdata/pytorch-check.json)")
    a = ap.parse_args()
    torch.manual_seed(0)
    seqs = np.load(a.npz)["sequences"]
    if seqs.ndim != 4 or seqs.shape[1] != 20:
        sys.exit("%s: sequences of shape %s, want (N, 20, 64, 64)" % (a.npz, seqs.shape))
    model, source = load_model(a.weights)
    x, y = torch.from_numpy(seqs[:, :10]), torch.from_numpy(seqs[:, 10:])
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), a.batch):
            preds.append(model(x[i:i + a.batch]))
    pred = torch.cat(preds)
    last = x[:, 9:10].expand_as(y)
    se_model = ((pred.double() - y.double()) ** 2).mean(dim=(0, 2, 3))
    se_copy = ((last.double() - y.double()) ** 2).mean(dim=(0, 2, 3))
    print("model:    %s (weights %s, torch %s)" % (source, a.weights, torch.__version__))
    print("data:     %s, %d sequences" % (a.npz, len(seqs)))
    print("MSE per pixel (0..255 scale), mean over the 10 predicted frames:")
    print("  model      %8.1f" % se_model.mean().item())
    print("  copy-last  %8.1f" % se_copy.mean().item())
    print("per step:  " + " ".join("%6d" % (k + 1) for k in range(10)))
    print("  model    " + " ".join("%6.0f" % v for v in se_model.tolist()))
    print("  copy     " + " ".join("%6.0f" % v for v in se_copy.tolist()))
    if a.save_pred:
        np.savez(a.save_pred, prediction=pred.numpy().astype(np.float32))
        print("wrote    %s" % a.save_pred)
    if a.json:
        d = np.load(a.npz)
        rec = {
            "command": "go run scripts/moving_mnist_npz.go -n %d -seed %d -o mm.npz && "
                       "/usr/bin/python3 scripts/moving_mnist_check.py mm.npz --json %s"
                       % (len(seqs), int(d["seed"][0]) if "seed" in d else -1, a.json),
            "n": len(seqs),
            "seed": int(d["seed"][0]) if "seed" in d else None,
            # The sequences as bytes (they are whole values 0..255): pins the generator.
            "sha256_uint8": hashlib.sha256(seqs.astype(np.uint8).tobytes()).hexdigest(),
            "copy_last_mse": se_copy.mean().item(),
            "copy_last_mse_per_step": se_copy.tolist(),
            "model_mse": se_model.mean().item(),
            "model_mse_per_step": se_model.tolist(),
            "model": source,
            "weights": os.path.basename(a.weights),
            "written_by": {"torch": torch.__version__, "numpy": np.__version__, "machine": platform.machine(),
                           "cpu": platform.processor() or "unknown"},
        }
        if not np.array_equal(seqs, np.round(seqs)) or seqs.min() < 0 or seqs.max() > 255:
            sys.exit("%s: sequences are not whole values 0..255" % a.npz)
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(rec, f, indent=1)
            f.write("\n")
        os.replace(tmp, a.json)
        print("wrote    %s" % a.json)


if __name__ == "__main__":
    main()
