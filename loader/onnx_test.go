package loader

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
)

func TestLoadONNXFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "fixtures", "onnx", "*.onnx"))
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		m, err := LoadONNX(f)
		if err != nil {
			t.Fatal(err)
		}
		head, _ := os.ReadFile(f)
		if !IsONNX(head[:16]) {
			t.Errorf("%s: IsONNX false", f)
		}
		w := m.ByName["m.cell_list.0.conv.weight"]
		if w == nil || w.DType != "float32" || len(w.Shape) != 4 || len(w.Data) != w.NumElements() || w.Shape[0]%4 != 0 {
			t.Errorf("%s: cell_list.0 weight missing or malformed", f)
		} else if m.Opset < 11 || !strings.HasPrefix(m.Producer, "pytorch") {
			t.Errorf("%s: opset %d, producer %q", f, m.Opset, m.Producer)
		}
	}
}

func tensorModel(ts ...*onnxpb.TensorProto) []byte {
	mp := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(17)}},
		Graph:       &onnxpb.GraphProto{Name: proto.String("g"), Initializer: ts},
	}
	b, _ := proto.Marshal(mp)
	return b
}

func TestONNXTensorTypes(t *testing.T) {
	f32 := make([]byte, 8)
	binary.LittleEndian.PutUint32(f32, math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(f32[4:], math.Float32bits(-2))
	ts := []*onnxpb.TensorProto{
		{Name: proto.String("raw"), Dims: []int64{2}, DataType: proto.Int32(1), RawData: f32},
		{Name: proto.String("floats"), Dims: []int64{2}, DataType: proto.Int32(1), FloatData: []float32{1.5, -2}},
		{Name: proto.String("doubles"), Dims: []int64{2}, DataType: proto.Int32(11), DoubleData: []float64{1.5, -2}},
		{Name: proto.String("halfs"), Dims: []int64{2}, DataType: proto.Int32(10), Int32Data: []int32{0x3e00, 0xc000}},
		{Name: proto.String("bf16"), Dims: []int64{2}, DataType: proto.Int32(16), Int32Data: []int32{0x3fc0, 0xc000}},
		{Name: proto.String("ints"), Dims: []int64{2}, DataType: proto.Int32(7), Int64Data: []int64{math.MaxInt64, -1}},
	}
	m, err := ParseONNX("t.onnx", tensorModel(ts...), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"raw", "floats", "doubles", "halfs", "bf16"} {
		v := m.ByName[n]
		if v == nil || len(v.Data) != 2 || v.Data[0] != 1.5 || v.Data[1] != -2 {
			t.Errorf("%s: %+v", n, v)
		}
	}
	if v := m.ByName["ints"]; v.IsFloat() || v.Ints[0] != math.MaxInt64 {
		t.Errorf("ints: %+v", v)
	}
}

func TestONNXErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 16), 0o644)
	ext := func(kv ...string) *onnxpb.TensorProto {
		tp := &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{4}, DataType: proto.Int32(1), DataLocation: onnxpb.TensorProto_EXTERNAL.Enum()}
		for i := 0; i < len(kv); i += 2 {
			tp.ExternalData = append(tp.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String(kv[i]), Value: proto.String(kv[i+1])})
		}
		return tp
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"garbage", []byte("\x08\x07\x12\xff\xff"), "not an ONNX ModelProto"},
		{"no graph", func() []byte { b, _ := proto.Marshal(&onnxpb.ModelProto{IrVersion: proto.Int64(8)}); return b }(), "no graph"},
		{"raw size", tensorModel(&onnxpb.TensorProto{Name: proto.String("a"), Dims: []int64{3}, DataType: proto.Int32(1), RawData: make([]byte, 8)}), "raw_data has 8 bytes, want 12"},
		{"typed count", tensorModel(&onnxpb.TensorProto{Name: proto.String("a"), Dims: []int64{3}, DataType: proto.Int32(1), FloatData: []float32{1}}), "1 values for shape (3,)"},
		{"negative dim", tensorModel(&onnxpb.TensorProto{Name: proto.String("a"), Dims: []int64{-1}, DataType: proto.Int32(1)}), "negative dimension"},
		{"huge dims", tensorModel(&onnxpb.TensorProto{Name: proto.String("a"), Dims: []int64{1 << 40, 1 << 40}, DataType: proto.Int32(1)}), "more than"},
		{"string type", tensorModel(&onnxpb.TensorProto{Name: proto.String("a"), Dims: []int64{1}, DataType: proto.Int32(8)}), "data type 8"},
		{"duplicate", tensorModel(&onnxpb.TensorProto{Name: proto.String("a"), DataType: proto.Int32(1), FloatData: []float32{1}}, &onnxpb.TensorProto{Name: proto.String("a"), DataType: proto.Int32(1), FloatData: []float32{1}}), "defined twice"},
		{"escape", tensorModel(ext("location", "../w.bin")), "relative to the model"},
		{"absolute", tensorModel(ext("location", "/etc/passwd")), "relative to the model"},
		{"past end", tensorModel(ext("location", "w.bin", "offset", "8")), "runs past the end"},
		{"bad length", tensorModel(ext("location", "w.bin", "length", "12")), "length 12, want 16"},
		{"bad offset", tensorModel(ext("location", "w.bin", "offset", "x")), "non-negative integer"},
		{"missing file", tensorModel(ext("location", "nope.bin")), "nope.bin"},
	}
	for _, c := range cases {
		_, err := ParseONNX("t.onnx", c.data, dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
			continue
		}
		var fe *FormatError
		var ue *UnsupportedError
		if !errors.As(err, &fe) && !errors.As(err, &ue) {
			t.Errorf("%s: error type %T", c.name, err)
		}
	}
	if _, err := ParseONNX("t.onnx", tensorModel(ext("location", "w.bin")), dir); err != nil {
		t.Errorf("valid external data: %v", err)
	}
	if _, err := ParseONNX("t.onnx", tensorModel(ext("location", "w.bin")), ""); err == nil {
		t.Error("external data accepted without a directory")
	}
}

// FuzzParseONNX: no input makes the loader panic, hang or allocate beyond
// what the bytes justify. Seeds: loader/testdata/fuzz/FuzzParseONNX and a
// few built here.
func FuzzParseONNX(f *testing.F) {
	f.Add(tensorModel(&onnxpb.TensorProto{Name: proto.String("a"), Dims: []int64{2}, DataType: proto.Int32(1), FloatData: []float32{1, 2}}))
	f.Add(tensorModel(&onnxpb.TensorProto{Name: proto.String("h"), Dims: []int64{1}, DataType: proto.Int32(10), Int32Data: []int32{0x3c00}}))
	f.Add([]byte("\x08\x07\x12\x07pytorch"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseONNX("fuzz.onnx", data, "")
		if err != nil {
			var fe *FormatError
			var ue *UnsupportedError
			if !errors.As(err, &fe) && !errors.As(err, &ue) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, in := range m.Initializers {
			if n := in.NumElements(); n != in.Len() {
				t.Fatalf("%s: %d values for shape %v", in.Name, in.Len(), in.Shape)
			}
		}
	})
}
