#!/usr/bin/python3
"""Writes the PyTorch .pt fixtures used by loader/pt_test.go.

Made with (Debian's torch 1.13, numpy 1.24):

    cd /work/main && /usr/bin/python3 scripts/make_pt_fixtures.py

Outputs, all tiny:
  fixtures/pt/<name>.pt          the file under test
  fixtures/pt/<name>.npz         expected tensors, float32, keys = flattened names
                                 in the order the Go loader must list them
  fixtures/real/<name>.expect.json
                                 shape, sums and sampled exact values of the
                                 ConvLSTM tensors of the two real checkpoints
                                 (copied from /work/shared/real-checkpoints)

Crafted variants (torch 1.13 cannot write them itself):
  * cuda-tagged storages: torch.serialization.location_tag is monkeypatched to
    return "cuda:0" / "cuda:1" while saving, so the pickle carries the tag
    exactly as a GPU save would, without a GPU.
  * torch 2.x zip layout: the archive written by torch 1.13 is re-packed with
    python's zipfile, adding byteorder, .data/serialization_id,
    .format_version and .storage_alignment records and padding every
    data/ record's local header extra field (id "FB", as torch does) so the
    bytes start at a multiple of 64.
  * big-endian: same re-packing with byteorder "big" and every storage
    byte-swapped by its element size; and a legacy file rewritten as a
    big-endian machine writes it (sys_info little_endian=False, counts and
    elements byte-swapped).
  * folder name: the re-packed archive's top folder is renamed.
"""

import argparse
import collections
import io
import json
import os
import pickle
import shutil
import struct
import sys
import zipfile

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "fixtures", "pt")
REAL_SRC = "/work/shared/real-checkpoints"
REAL_OUT = os.path.join(ROOT, "fixtures", "real")

torch.manual_seed(1234)


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy().astype(np.float32)


def write(name, obj, expected, legacy=False, protocol=2):
    path = os.path.join(OUT, name + ".pt")
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy,
               pickle_protocol=protocol)
    write_npz(name, expected)
    return path


def write_npz(name, expected):
    np.savez(os.path.join(OUT, name + ".npz"),
             **collections.OrderedDict((k, f32(v)) for k, v in expected.items()))


# ---------------------------------------------------------------- models

class ConvLSTMCell(nn.Module):
    def __init__(self, cin, hidden, k=3):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(cin + hidden, 4 * hidden, k, padding=k // 2)


class ConvLSTM(nn.Module):
    def __init__(self, cin, hidden):
        super().__init__()
        cells = []
        for i, h in enumerate(hidden):
            cells.append(ConvLSTMCell(cin if i == 0 else hidden[i - 1], h))
        self.cell_list = nn.ModuleList(cells)
        self.norm = nn.BatchNorm2d(hidden[-1])
        # A non-persistent buffer is not part of state_dict.
        self.register_buffer("scratch", torch.zeros(2), persistent=False)


def small_state_dict():
    m = ConvLSTM(1, [2, 2])
    return m, m.state_dict()


# ---------------------------------------------------------------- crafting

def repack(src, dst, folder, byteorder=None, big=False, torch2=True,
           dtypes=None):
    """Rewrites a torch 1.13 zip checkpoint in torch 2.x layout."""
    zin = zipfile.ZipFile(src)
    old = zin.namelist()[0].split("/")[0]
    records = []
    for info in zin.infolist():
        rel = info.filename.split("/", 1)[1]
        data = zin.read(info)
        if big and rel.startswith("data/"):
            size = dtypes[rel]
            data = swap(data, size)
        records.append((rel, data))
    if torch2:
        # torch 2.x writes these in this order around the data records.
        extra = [("byteorder", (byteorder or "little").encode())]
        extra += [(".data/serialization_id", b"1234567890123456789012345678901234567890")]
        extra += [(".format_version", b"1"), (".storage_alignment", b"64")]
        records = records[:1] + extra + records[1:]
    with open(dst, "wb") as f:
        zout = zipfile.ZipFile(f, "w", zipfile.ZIP_STORED)
        for rel, data in records:
            name = folder + "/" + rel
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_STORED
            if torch2 and rel.startswith("data/"):
                start = f.tell() + 30 + len(name.encode())
                pad = (-(start + 4)) % 64
                zi.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            zout.writestr(zi, data)
        zout.close()


def legacy_bigendian(src, dst):
    """Rewrites a legacy file as a big-endian machine would have written it:
    sys_info says little_endian=False, and every storage's int64 element
    count and elements are byte-swapped."""
    sizes = {}

    class U(pickle.Unpickler):
        def find_class(self, mod, name):
            if name.startswith("_rebuild"):
                return lambda *a: None
            return super().find_class(mod, name)

        def persistent_load(self, pid):
            sizes[pid[2]] = torch.tensor([], dtype=pid[1].dtype).element_size()
            return None

    f = open(src, "rb")
    raw = []
    for i in range(5):
        start = f.tell()
        obj = U(f).load() if i == 3 else pickle.load(f)
        end = f.tell()
        f.seek(start)
        raw.append(f.read(end - start))
        if i == 2:
            obj["little_endian"] = False
            raw[2] = pickle.dumps(obj, protocol=2)
        keys = obj
    with open(dst, "wb") as out:
        out.write(b"".join(raw))
        for k in keys:
            (n,) = struct.unpack("<q", f.read(8))
            out.write(struct.pack(">q", n))
            out.write(swap(f.read(n * sizes[k]), sizes[k]))
        assert f.read() == b""


def swap(data, size):
    if size == 1:
        return data
    a = np.frombuffer(data, dtype=np.dtype("u%d" % size))
    return a.byteswap().tobytes()


# ---------------------------------------------------------------- fixtures

def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))

    # Plain state_dicts, zip and legacy.
    _, sd = small_state_dict()
    write("zip_state_dict", sd, sd)
    write("legacy_state_dict", sd, sd, legacy=True)
    write("zip_proto4", sd, sd, protocol=4)

    # DataParallel-style names.
    dp = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    write("module_prefix", dp, dp)

    # dtypes with the awkward values.
    special = [0.0, -0.0, 1.0, -2.5, 1.0 / 3.0, float("inf"), float("-inf"), float("nan")]
    h = torch.tensor(special + [5.96e-8, -5.96e-8, 6.1e-5, 3.0e-5, 65504.0, 1e-7],
                     dtype=torch.float16)
    bf = torch.tensor(special + [1e-40, -9.2e-41, 3.0e38, 1e-38], dtype=torch.bfloat16)
    dt = collections.OrderedDict()
    dt["f32"] = torch.tensor(special + [1e-45, -1.4e-45, 3.4e38], dtype=torch.float32)
    dt["f64"] = torch.tensor(special + [1e-300, 2.0 ** -24], dtype=torch.float64)
    dt["f16"] = h
    dt["bf16"] = bf
    dt["f16_2d"] = torch.randn(3, 5).to(torch.float16)
    dt["i64"] = torch.tensor([[0, -1, 7], [123456, -5, 2 ** 20]], dtype=torch.int64)
    dt["i32"] = torch.tensor([1, -2, 3], dtype=torch.int32)
    dt["u8"] = torch.tensor([0, 255, 7], dtype=torch.uint8)
    dt["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    dt["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    dt["b"] = torch.tensor([True, False, True])
    dt["num_batches_tracked"] = torch.tensor(17)
    write("dtypes", dt, dt)
    write("dtypes_legacy", dt, dt, legacy=True)

    # Views: transposed, sliced with offset, shared storage, 0-d, empty, expand.
    base = torch.arange(48, dtype=torch.float32).reshape(6, 8)
    v = collections.OrderedDict()
    v["full"] = base
    v["transposed"] = base.t()
    v["sliced"] = base[2:5, 3:7]
    v["row"] = base[4]
    v["col"] = base[:, 5]
    v["every_other"] = base[::2, 1::3]
    v["scalar"] = torch.tensor(3.25)
    v["scalar_view"] = base[1, 2]
    v["empty"] = torch.zeros(0, 3)
    v["expanded"] = torch.tensor([1.5, -2.0, 4.0]).unsqueeze(0).expand(4, 3)
    v["chunk0"], v["chunk1"] = torch.randn(2, 3, 4).unbind(0)
    v["half_t"] = torch.randn(4, 3).to(torch.float16).t()
    write("views", v, v)
    write("views_legacy", v, v, legacy=True)

    # A training checkpoint dict with the usual non-tensor baggage.
    m, sd = small_state_dict()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    loss = sum(p.sum() for p in m.parameters())
    loss.backward()
    opt.step()
    msd = m.state_dict()
    msd_with_np = collections.OrderedDict(msd)
    msd_with_np["x"] = np.arange(6, dtype=np.float32).reshape(2, 3)
    ckpt = {
        "epoch": 7,
        "val_loss": 0.125,
        "np_loss": np.float64(0.5),
        "np_int": np.int64(3),
        "torch_version": torch.__version__,
        "model_state_dict": msd_with_np,
        "optimizer_state_dict": opt.state_dict(),
        "config": {"hidden": [4, 3], "kernel": (3, 3), "name": "convlstm", "dropout": None},
        "args": argparse.Namespace(lr=0.001, epochs=10),
        "history": [torch.tensor([1.0, 2.0]), torch.tensor(0.5)],
    }
    exp = collections.OrderedDict()
    for k, t in msd.items():
        exp["model_state_dict." + k] = t
    for pid, st in opt.state_dict()["state"].items():
        for k, t in st.items():
            exp["optimizer_state_dict.state.%d.%s" % (pid, k)] = t
    exp["history.0"] = ckpt["history"][0]
    exp["history.1"] = ckpt["history"][1]
    write("checkpoint", ckpt, exp)
    write("checkpoint_legacy", ckpt, exp, legacy=True)

    # A whole pickled module: names as in its state_dict.
    m = ConvLSTM(1, [3, 2])
    with torch.no_grad():
        m.norm.running_mean.uniform_()
    write("whole_module", m, m.state_dict())
    write("whole_module_legacy", m, m.state_dict(), legacy=True)

    # cuda-tagged storages (see the header).
    orig = torch.serialization.location_tag
    try:
        torch.serialization.location_tag = lambda s: "cuda:0"
        write("cuda_legacy", sd, sd, legacy=True)
        torch.serialization.location_tag = lambda s: "cuda:1"
        write("cuda_zip", sd, sd)
    finally:
        torch.serialization.location_tag = orig

    # torch 2.x layout, big-endian, renamed folder.
    mixed = collections.OrderedDict()
    mixed["w"] = torch.randn(3, 4)
    mixed["w_t"] = mixed["w"].t()
    mixed["h"] = torch.randn(5).to(torch.float16)
    mixed["bf"] = torch.randn(2, 2).to(torch.bfloat16)
    mixed["d"] = torch.randn(3).to(torch.float64)
    mixed["n"] = torch.tensor(5)
    tmp = os.path.join(OUT, "tmp.pt")
    torch.save(mixed, tmp)
    sizes = {}
    z = zipfile.ZipFile(tmp)
    # Element size per storage key, from the tensors saved (keys are assigned
    # in order of first use by the pickler: w(0) h(1) bf(2) d(3) n(4)).
    for key, t in zip(["0", "1", "2", "3", "4"], [mixed["w"], mixed["h"], mixed["bf"], mixed["d"], mixed["n"]]):
        sizes["data/" + key] = t.element_size()
    assert sorted(n.split("/", 1)[1] for n in z.namelist() if "/data/" in n) == sorted(sizes)
    repack(tmp, os.path.join(OUT, "torch2_zip.pt"), "archive")
    write_npz("torch2_zip", mixed)
    repack(tmp, os.path.join(OUT, "torch2_bigendian.pt"), "archive", byteorder="big", big=True, dtypes=sizes)
    write_npz("torch2_bigendian", mixed)
    repack(tmp, os.path.join(OUT, "renamed_folder.pt"), "weights_v2_final", torch2=False)
    write_npz("renamed_folder", mixed)
    os.remove(tmp)
    torch.save(mixed, tmp, _use_new_zipfile_serialization=False)
    legacy_bigendian(tmp, os.path.join(OUT, "legacy_bigendian.pt"))
    write_npz("legacy_bigendian", mixed)
    os.remove(tmp)

    real()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("fixtures/pt: %d files, %d bytes" % (len(os.listdir(OUT)), total))


def real():
    os.makedirs(REAL_OUT, exist_ok=True)
    for base, ext in [("soccer-ball-convlstm", ".pth"), ("moving-mnist-encdec", ".pt")]:
        for f in [base + ext, base + ".LICENSE"]:
            dst = os.path.join(REAL_OUT, f)
            if not os.path.exists(dst):
                shutil.copyfile(os.path.join(REAL_SRC, f), dst)
        obj = torch.load(os.path.join(REAL_OUT, base + ext), map_location="cpu")
        if "model_state_dict" in obj:
            items = [("model_state_dict." + k, v) for k, v in obj["model_state_dict"].items()]
        else:
            items = list(obj.items())
        out = collections.OrderedDict()
        for name, t in items:
            if not (".cell_list." in name or name.split(".")[0] in ("enc1", "enc2", "dec1", "dec2")):
                continue
            a = f32(t).ravel()
            idx = sorted(set([0, 1, 2, len(a) - 1] + [int(i) for i in np.linspace(0, len(a) - 1, 12)]))
            out[name] = {
                "shape": list(t.shape),
                "sum": float(a.astype(np.float64).sum()),
                "abs_sum": float(np.abs(a.astype(np.float64)).sum()),
                "samples": [[i, float(a[i])] for i in idx],
            }
        with open(os.path.join(REAL_OUT, base + ".expect.json"), "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
