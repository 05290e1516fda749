package loader

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// FuzzReadNPY feeds arbitrary bytes to the .npy and .npz decoders: they
// must never panic, and a successful decode must be self-consistent and
// independent of whether the stream size is known.
func FuzzReadNPY(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "npy", "*.np[yz]"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if IsNPZ(b) || bytes.HasPrefix(b, []byte("PK")) {
			ts, keys, err := ReadNPZBytes("fuzz.npz", b)
			if err == nil {
				if len(ts) != len(keys) {
					t.Fatalf("%d tensors, %d keys", len(ts), len(keys))
				}
				for _, k := range keys {
					checkFuzzTensor(t, ts[k])
				}
			}
			return
		}
		t1, err1 := DecodeNPY("fuzz.npy", bytes.NewReader(b), int64(len(b)))
		t2, err2 := DecodeNPY("fuzz.npy", bytes.NewReader(b), -1)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("known size: %v; unknown size: %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		checkFuzzTensor(t, t1)
		checkFuzzTensor(t, t2)
		if len(t1.Data) != len(t2.Data) || t1.DType != t2.DType {
			t.Fatalf("known/unknown size disagree: %v/%v", t1.Shape, t2.Shape)
		}
	})
}

func checkFuzzTensor(t *testing.T, tn *tensor.Tensor) {
	t.Helper()
	if tn == nil || tn.Shape == nil || tn.Check() != nil || tn.DType == "" {
		t.Fatalf("inconsistent tensor %+v", tn)
	}
}
