#!/usr/bin/python3
"""Score the real Moving-MNIST model (PyTorch) on sequences made by our Go generator.

    go run scripts/moving_mnist_npz.go -n 256 -seed 1 -o /tmp/mm.npz
    /usr/bin/python3 scripts/moving_mnist_check.py /tmp/mm.npz \
        [--weights fixtures/real/moving-mnist-encdec.pt] [--batch 16]

Reads "sequences" (N, 20, 64, 64) float32 raw pixels 0..255 (package
movingmnist), runs the model on the first 10 frames of each and prints the
per-pixel mean squared error (0..255 scale) of its prediction of the next 10
against the truth, beside copying the last input frame, overall and per
predicted step. This is what `convlstm-run demo` prints, computed by PyTorch:
a check that the Go generator's sequences are what the model was trained on
(Srivastava et al.'s mnist_test_seq.npy) and a reference for the Go demo.

The model (Silver0x10/VideoPrediction_MovingMNIST, MIT) is
scripts/whole_models.py's MovingMNISTEncDec with the published weights
(fixtures/real/moving-mnist-encdec.pt).
"""
import argparse
import hashlib
import json
import os
import platform
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_WEIGHTS = os.path.join(REPO, "fixtures", "real", "moving-mnist-encdec.pt")


def load_model(weights):
    sys.path.insert(0, HERE)
    import whole_models  # scripts/whole_models.py: the model's PyTorch definition (issue 8)
    return whole_models.load_real(weights), "whole_models.MovingMNISTEncDec"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("npz")
    ap.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--save-pred", help="also write the model's prediction to this .npz: \"prediction\" (K, 10, 64, 64) float16 "
                    "of the first K sequences (the fixture demo/testdata/pytorch-prediction.npz)")
    ap.add_argument("--save-pred-n", type=int, default=1, metavar="K", help="sequences in --save-pred (default 1)")
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
        np.savez_compressed(a.save_pred, prediction=pred[:a.save_pred_n].numpy().astype(np.float16))
        print("wrote    %s" % a.save_pred)
    if a.json:
        d = np.load(a.npz)
        rec = {
            "command": "go run scripts/moving_mnist_npz.go -n %d -seed %d -o mm.npz && "
                       "/usr/bin/python3 scripts/moving_mnist_check.py mm.npz --json %s%s"
                       % (len(seqs), int(d["seed"][0]) if "seed" in d else -1, a.json,
                          " --save-pred %s --save-pred-n %d" % (a.save_pred, a.save_pred_n) if a.save_pred else ""),
            "n": len(seqs),
            "seed": int(d["seed"][0]) if "seed" in d else None,
            # The sequences as bytes (they are whole values 0..255): pins the generator.
            "sha256_uint8": hashlib.sha256(seqs.astype(np.uint8).tobytes()).hexdigest(),
            "copy_last_mse": se_copy.mean().item(),
            "copy_last_mse_per_step": se_copy.tolist(),
            "model_mse": se_model.mean().item(),
            "model_mse_per_step": se_model.tolist(),
            "model_mse_per_sequence": ((pred.double() - y.double()) ** 2).mean(dim=(1, 2, 3)).tolist(),
            "model": source,
            "weights": os.path.relpath(os.path.abspath(a.weights), REPO),
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
