package loader

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
)

// Inspect reads what Load reads — names, shapes, dtypes, metadata, what was
// skipped — and no values, for every format of named tensors, from a file
// and from memory.
func TestInspectCheckpointMatchesLoad(t *testing.T) {
	for _, path := range []string{
		"../fixtures/pt/checkpoint.pt", "../fixtures/pt/checkpoint_legacy.pt", "../fixtures/pt/dtypes.pt",
		"../fixtures/real/soccer-ball-convlstm.pth", "../fixtures/safetensors/model_f16.safetensors",
		"../fixtures/safetensors/model_bf16.safetensors", "../fixtures/pt/dtypes.npz", "../fixtures/safetensors/input.npy",
	} {
		full, err := LoadCheckpoint(path)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fromBytes, err := LoadCheckpointBytes(path, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, inspect := range []func() (*Checkpoint, error){
			func() (*Checkpoint, error) { return InspectCheckpoint(path) },
			func() (*Checkpoint, error) { return InspectCheckpointBytes(path, data) },
		} {
			ck, err := inspect()
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if ck.Format != full.Format || !slices.Equal(ck.Names, full.Names) || !slices.Equal(ck.Skipped, full.Skipped) || len(ck.Metadata) != len(full.Metadata) {
				t.Errorf("%s: inspect read %s %v (skipped %d), load %s %v (skipped %d)", path, ck.Format, ck.Names, len(ck.Skipped), full.Format, full.Names, len(full.Skipped))
			}
			for _, n := range full.Names {
				it, lt := ck.Tensors[n], full.Tensors[n]
				if !slices.Equal(it.Shape, lt.Shape) || it.DType != lt.DType {
					t.Errorf("%s: %s: inspect %s %v, load %s %v", path, n, it.DType, it.Shape, lt.DType, lt.Shape)
				}
				if it.Data != nil || it.Ints != nil {
					t.Errorf("%s: %s: inspect read values", path, n)
				}
				if lt.Len() != lt.NumElements() || fromBytes.Tensors[n].Len() != lt.NumElements() {
					t.Errorf("%s: %s: load read %d values for %d elements", path, n, lt.Len(), lt.NumElements())
				}
			}
		}
	}
	if _, err := LoadCheckpoint("../fixtures/onnx/static_op13.onnx"); err == nil || !strings.Contains(err.Error(), "LoadONNX") {
		t.Errorf("an ONNX file read as named tensors: %v", err)
	}
}

// A header-only read makes every check a full read makes on the header.
func TestInspectSafetensorsChecks(t *testing.T) {
	four := make([]byte, 8)
	for _, c := range []struct{ header, want string }{
		{`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}`, "not within"},
		{`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, "needs 4"},
		{`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, "gap"},
		{`{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}`, "F8_E4M3"},
	} {
		_, lerr := LoadSafetensorsBytes("t.safetensors", st(c.header, four))
		_, ierr := InspectSafetensorsBytes("t.safetensors", st(c.header, four))
		if ierr == nil || lerr == nil || ierr.Error() != lerr.Error() || !strings.Contains(ierr.Error(), c.want) {
			t.Errorf("%s: inspect %v, load %v; want both %q", c.header, ierr, lerr, c.want)
		}
	}
}

// The .npy/.npz header reads check sizes as the full reads do.
func TestInspectNPY(t *testing.T) {
	x, err := InspectNPY("../fixtures/forward/input-fortran/input.npy")
	if err != nil || x.Data != nil || len(x.Shape) != 5 || x.DType != "float32" {
		t.Fatalf("InspectNPY: %v %+v", err, x)
	}
	dir := t.TempDir()
	data, _ := os.ReadFile("../fixtures/forward/one-layer-3x3/input.npy")
	short := filepath.Join(dir, "short.npy")
	os.WriteFile(short, data[:len(data)-4], 0o644)
	if _, err := InspectNPY(short); err == nil || !strings.Contains(err.Error(), "truncated data") {
		t.Errorf("truncated .npy: %v", err)
	}
	ts, keys, err := InspectNPZ("../fixtures/forward/initial-state/state_in.npz")
	if err != nil || len(keys) != 4 || ts["h_1"].Data != nil || len(ts["h_1"].Shape) != 4 {
		t.Errorf("InspectNPZ: %v %v", err, keys)
	}
}

// An ONNX model's structure is read without decoding initialisers or
// opening external data: a model whose external weights file is missing
// can be inspected, not loaded.
func TestInspectONNX(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../fixtures/onnx/external_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "m.onnx") // without its .weights file
	os.WriteFile(p, data, 0o644)
	if _, err := LoadONNX(p); err == nil || !strings.Contains(err.Error(), "external data") {
		t.Fatalf("LoadONNX without the weights file: %v", err)
	}
	m, err := InspectONNX(p)
	if err != nil {
		t.Fatal(err)
	}
	full, err := LoadONNX("../fixtures/onnx/external_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Initializers) != len(full.Initializers) || m.Opset != full.Opset {
		t.Fatalf("inspect: %d initialisers opset %d; load: %d, %d", len(m.Initializers), m.Opset, len(full.Initializers), full.Opset)
	}
	for i, it := range m.Initializers {
		lt := full.Initializers[i]
		if it.Name != lt.Name || !slices.Equal(it.Shape, lt.Shape) || it.DType != lt.DType || it.Data != nil || it.Ints != nil {
			t.Errorf("initialiser %d: inspect %s %s %v, load %s %s %v", i, it.Name, it.DType, it.Shape, lt.Name, lt.DType, lt.Shape)
		}
	}
	// Inline data of the wrong length is caught without decoding it.
	bad := tensorModel(&onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{2, 2}, DataType: proto.Int32(1), RawData: make([]byte, 12)})
	if _, err := InspectONNXBytes("bad.onnx", bad); err == nil || !strings.Contains(err.Error(), "raw_data has 12 bytes, want 16") {
		t.Errorf("short raw_data: %v", err)
	}
}

// Detection and the .pt reader share one data.pkl rule: one top-level
// folder; two folders, or a bare data.pkl, are not a torch.save zip.
func TestZipSniffer(t *testing.T) {
	mk := func(names ...string) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for _, n := range names {
			w, _ := zw.Create(n)
			w.Write([]byte("x"))
		}
		zw.Close()
		return b.Bytes()
	}
	if _, err := DetectBytes("two.pt", mk("a/data.pkl", "b/data.pkl")); err == nil || !strings.Contains(err.Error(), "two folders") {
		t.Errorf("two data.pkl folders: %v", err)
	}
	var fe *FormatError
	if _, err := DetectBytes("bare.pt", mk("data.pkl")); !errors.As(err, &fe) {
		t.Errorf("a bare data.pkl detected as: %v", err)
	}
	if f, err := DetectBytes("ok.pt", mk("archive/data.pkl", "archive/data/0")); err != nil || f != FormatPTZip {
		t.Errorf("archive/data.pkl: %q %v", f, err)
	}
	if f, err := DetectBytes("x.npz", mk("a.npy")); err != nil || f != FormatNPZ {
		t.Errorf("npz: %q %v", f, err)
	}
}
