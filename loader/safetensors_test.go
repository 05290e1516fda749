package loader

import (
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSafetensorsFixtures reads the files scripts/onnx_make_fixtures.py
// wrote from one state_dict in four dtypes and compares every tensor with
// the .pt it came from, rounded as the dtype rounds.
func TestSafetensorsFixtures(t *testing.T) {
	dir := filepath.Join("..", "fixtures", "safetensors")
	pt, err := LoadPT(filepath.Join(dir, "model.pt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tag, dtype string
		tol        float64 // relative
	}{{"f32", "float32", 0}, {"f64", "float64", 0}, {"f16", "float16", 1.0 / 1024}, {"bf16", "bfloat16", 1.0 / 128}} {
		ck, err := LoadSafetensors(filepath.Join(dir, "model_"+c.tag+".safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if ck.Format != FormatSafetensors || ck.Metadata["gate_order"] != "ifgo" {
			t.Errorf("%s: format %q, metadata %v", c.tag, ck.Format, ck.Metadata)
		}
		if !slices.Equal(ck.Names, pt.Names) {
			t.Errorf("%s: names %v, .pt has %v", c.tag, ck.Names, pt.Names)
		}
		for _, n := range pt.Names {
			a, b := ck.Tensors[n], pt.Tensors[n]
			if a == nil || !slices.Equal(a.Shape, b.Shape) || string(a.DType) != c.dtype {
				t.Fatalf("%s: %s: got %+v, want shape %v dtype %s", c.tag, n, a, b.Shape, c.dtype)
			}
			for i := range b.Data {
				// Half precision rounds to 11 significant bits, and to
				// 2^-24 absolute below its normal range.
				lim := c.tol * math.Abs(float64(b.Data[i]))
				if c.tol > 0 {
					lim += 1.0 / (1 << 24)
				}
				if d := math.Abs(float64(a.Data[i] - b.Data[i])); d > lim {
					t.Fatalf("%s: %s[%d] = %v, .pt %v", c.tag, n, i, a.Data[i], b.Data[i])
				}
			}
		}
	}
}

// st builds a safetensors file from a raw header and data.
func st(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestSafetensorsValidation(t *testing.T) {
	four := make([]byte, 8)
	cases := []struct {
		name, header string
		data         []byte
		want         string
	}{
		{"ok", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, four, ""},
		{"ok padded + metadata", `{"__metadata__":{"gate_order":"fiog"},"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}   `, four, ""},
		{"empty shape scalar", `{"a":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}`, four, ""},
		{"past end", `{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}`, four, "not within"},
		{"size mismatch", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, four, "needs 4"},
		{"overlap", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, four, "overlap"},
		{"gap", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, four, "gap"},
		{"trailing data", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, four, "cover 4 data bytes"},
		{"duplicate key", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, four, "twice"},
		{"bad dtype", `{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}`, four, "F8_E4M3"},
		{"negative dim", `{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, four, "negative"},
		{"huge dims", `{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}`, four, "more values"},
		{"unknown field", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`, four, "unknown field"},
		{"not object", `[1,2]`, four, "'{'"},
		{"junk after", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}x`, four, "after the JSON"},
		{"bad metadata", `{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, four, "strings"},
	}
	for _, c := range cases {
		ck, err := LoadSafetensorsBytes("t.safetensors", st(c.header, c.data))
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			} else if len(ck.Names) != 1 {
				t.Errorf("%s: names %v", c.name, ck.Names)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		var fe *FormatError
		var ue *UnsupportedError
		if err != nil && !errors.As(err, &fe) && !errors.As(err, &ue) {
			t.Errorf("%s: error type %T", c.name, err)
		}
	}
	// Header length beyond the file, and a file shorter than 8 bytes.
	b := st(`{}`, nil)
	binary.LittleEndian.PutUint64(b, 1<<40)
	if _, err := LoadSafetensorsBytes("t", b); err == nil || !strings.Contains(err.Error(), "header length") {
		t.Errorf("huge header length: %v", err)
	}
	if _, err := LoadSafetensorsBytes("t", []byte{1, 2}); err == nil {
		t.Error("short file accepted")
	}
}
