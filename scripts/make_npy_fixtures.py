#!/usr/bin/python3
"""Write the .npy/.npz test fixtures for loader/npy_test.go with real NumPy.

Run from the repository root:  /usr/bin/python3 scripts/make_npy_fixtures.py

Every fixture goes to loader/testdata/npy/.  Alongside them, expected.json
lists for each array (file, plus "key" for .npz members) the shape, the
dtype name the Go loader should report, and the expected float32 values as
uint32 bit patterns (computed by NumPy's own astype(float32), so NaN, Inf,
-0.0 and float16 subnormals are checked exactly and independently of the
Go decoder).  Fortran-order arrays list their values in C order.
"""

import io
import json
import os
import zipfile

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "loader", "testdata", "npy")

expected = []


def record(fname, arr, key=None):
    with np.errstate(over="ignore"):  # -1e300 -> -inf is intended
        a = np.ascontiguousarray(np.asarray(arr).astype(np.float32))
    e = {
        "file": fname,
        "shape": list(arr.shape),
        "dtype": {"?": "bool"}.get(arr.dtype.char, arr.dtype.name),
        "bits": [int(b) for b in a.view(np.uint32).ravel(order="C")],
    }
    if key is not None:
        e["key"] = key
    expected.append(e)


def save(fname, arr, version=None):
    path = os.path.join(OUT, fname)
    if version is None:
        np.save(path, arr)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, version=version)
    assert os.path.getsize(path) < 2048, fname
    record(fname, arr)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))

    special = [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan, 3.0e-41, 1.0e-45, 3.4028235e38]
    f4 = np.array(special, dtype="<f4").reshape(2, 5)
    save("f4_le.npy", f4)
    save("f4_be.npy", f4.astype(">f4"))

    f8 = np.array([0.0, -0.0, 1.0 / 3.0, -1e300, np.inf, -np.inf, np.nan, 5e-324, 1e-40, 123456.789],
                  dtype="<f8").reshape(5, 2)
    save("f8_le.npy", f8)
    save("f8_be.npy", f8.astype(">f8"))

    # float16: zero, -0, smallest subnormal 2^-24, largest subnormal,
    # smallest normal, 1, max 65504, inf, -inf, NaN, negative subnormal, 1/3.
    h_bits = np.array([0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0x7BFF,
                       0x7C00, 0xFC00, 0x7E00, 0x8201, 0x3555], dtype="<u2")
    f2 = h_bits.view("<f2").reshape(3, 4)
    save("f2_le.npy", f2)
    save("f2_be.npy", f2.astype(">f2"))

    a3 = np.arange(24, dtype="<f4").reshape(2, 3, 4) * 0.5 - 3
    save("fortran_3d_f4.npy", np.asfortranarray(a3))
    save("fortran_3d_f8_be.npy", np.asfortranarray(a3.astype(">f8")))
    save("fortran_2d_f4.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))

    save("scalar_0d.npy", np.array(3.25, dtype="<f4"))
    save("five_d.npy", (np.arange(12, dtype="<f4") - 6).reshape(1, 2, 1, 3, 2))
    save("empty_0x3.npy", np.zeros((0, 3), dtype="<f4"))

    save("bool.npy", np.array([[True, False, True], [False, False, True]]))
    save("i4.npy", np.array([-2147483648, -1, 0, 7, 2147483647], dtype="<i4"))
    save("i8.npy", np.array([-(2 ** 40), -1, 0, 16777217, 2 ** 62], dtype="<i8"))
    save("u1.npy", np.array([[0, 1, 127], [128, 254, 255]], dtype="|u1"))

    v = np.arange(6, dtype="<f4").reshape(3, 2) / 4
    save("v2_f4.npy", v, version=(2, 0))
    save("v3_f4.npy", v, version=(3, 0))

    # Object array: must be refused, never unpickled (not in expected.json).
    np.save(os.path.join(OUT, "object.npy"), np.array([1, "x", None], dtype=object), allow_pickle=True)

    members = {
        "weight": np.arange(24, dtype="<f4").reshape(2, 3, 4) / 8,
        "bias": np.array([1.5, -0.0, np.nan], dtype="<f2"),
        "step": np.array(7, dtype="<i8"),
        "fmat": np.asfortranarray(np.arange(6, dtype=">f8").reshape(3, 2)),
    }
    order = ["weight", "bias", "step", "fmat"]
    for fname, fn in (("arrays.npz", np.savez), ("arrays_compressed.npz", np.savez_compressed)):
        path = os.path.join(OUT, fname)
        fn(path, **{k: members[k] for k in order})
        assert os.path.getsize(path) < 2048, fname
        with zipfile.ZipFile(path) as z:
            assert [n[:-4] for n in z.namelist()] == order, z.namelist()
        for k in order:
            record(fname, members[k], key=k)

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(e) for e in expected) + "\n]\n")


if __name__ == "__main__":
    main()
