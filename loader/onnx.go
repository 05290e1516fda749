package loader

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/tensor"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
)

// Limits on what an ONNX file may ask us to allocate. A protobuf message is
// limited to 2 GiB by the format itself; weights beyond that live in external
// files, each tensor of which we still cap so that a forged dims field cannot
// make us allocate more than the data that backs it.
const (
	MaxONNXFileSize     = 2<<30 - 1 // protobuf's own limit
	MaxONNXTensorValues = 1 << 31   // per tensor, after checking the bytes exist
	maxONNXRank         = 16
)

// ONNXModel is a parsed ONNX ModelProto with its initialisers decoded.
type ONNXModel struct {
	File     string
	Proto    *onnxpb.ModelProto
	Opset    int64 // version of the default ("" / "ai.onnx") operator set
	Producer string
	// Initializers in file order, and by name. External data is resolved.
	Initializers []*NamedTensor
	ByName       map[string]*NamedTensor
}

// NamedTensor is a decoded TensorProto: a tensor and its name. Floating
// types (float, double, float16, bfloat16) are held as float32 in Data;
// integer and bool types exactly in Ints (shapes and indices use int64
// values such as INT64_MAX that a float32 cannot hold).
type NamedTensor struct {
	Name string
	*tensor.Tensor
}

// IsONNX reports whether head (the first bytes of a file, 16 or more are
// enough) looks like a serialised ONNX ModelProto. A ModelProto has no magic
// number; every exporter we know writes ir_version (field 1, varint) first,
// followed by opset_import, producer_name or graph. We accept field 1 as a
// small varint followed by the tag of one of the ModelProto's fields, which
// rules out zip (.pt, .npz), .npy, safetensors and pickle files.
func IsONNX(head []byte) bool {
	if len(head) < 3 || head[0] != 0x08 {
		return false
	}
	v, n := binary.Uvarint(head[1:])
	if n <= 0 || v == 0 || v > 100 {
		return false
	}
	if 1+n >= len(head) {
		return false
	}
	switch head[1+n] {
	case 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72: // producer_name, producer_version, domain, model_version, doc_string, graph, opset_import, metadata_props
		return true
	case 0xa2, 0xca: // training_info (20), functions (25): two-byte tags
		return 2+n < len(head) && head[2+n] == 0x01
	}
	return false
}

// LoadONNX reads an ONNX model file. External-data weights are read from
// files named relative to the model's directory.
func LoadONNX(path string) (*ONNXModel, error) {
	data, err := readONNXFile(path)
	if err != nil {
		return nil, err
	}
	return ParseONNX(path, data, filepath.Dir(path))
}

// InspectONNX reads only an ONNX model's structure: the graph, its nodes
// and value infos, and each initialiser's name, shape and element type
// (checked as LoadONNX checks them) without decoding its values or opening
// external data files (Data and Ints are nil).
func InspectONNX(path string) (*ONNXModel, error) {
	data, err := readONNXFile(path)
	if err != nil {
		return nil, err
	}
	return parseONNX(path, data, "", false)
}

// readONNXFile reads a whole model file, refusing one larger than a
// protobuf message can be before reading it.
func readONNXFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxONNXFileSize {
		return nil, &FormatError{File: path, Msg: fmt.Sprintf("%d bytes: larger than protobuf's 2 GiB limit (weights beyond that must be external data)", st.Size())}
	}
	return io.ReadAll(f)
}

// InspectONNXBytes is InspectONNX over a serialised ModelProto.
func InspectONNXBytes(file string, data []byte) (*ONNXModel, error) {
	return parseONNX(file, data, "", false)
}

// ParseONNX decodes a serialised ModelProto; file is used in messages and
// dir is where external data is looked up ("" refuses external data).
// It never panics.
func ParseONNX(file string, data []byte, dir string) (*ONNXModel, error) {
	return parseONNX(file, data, dir, true)
}

func parseONNX(file string, data []byte, dir string, decode bool) (m *ONNXModel, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, &FormatError{File: file, Msg: fmt.Sprintf("internal error while decoding: %v", r)}
		}
	}()
	if len(data) > MaxONNXFileSize {
		return nil, &FormatError{File: file, Msg: "larger than protobuf's 2 GiB limit"}
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, &FormatError{File: file, Msg: "not an ONNX ModelProto: " + err.Error()}
	}
	if mp.Graph == nil {
		return nil, &FormatError{File: file, Msg: "ModelProto has no graph"}
	}
	m = &ONNXModel{File: file, Proto: mp, Producer: strings.TrimSpace(mp.GetProducerName() + " " + mp.GetProducerVersion()), ByName: map[string]*NamedTensor{}}
	m.Opset = -1
	for _, o := range mp.OpsetImport {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			m.Opset = o.GetVersion()
		}
	}
	if m.Opset < 0 {
		if mp.GetIrVersion() >= 3 || len(mp.OpsetImport) > 0 {
			return nil, &FormatError{File: file, Record: "opset_import", Msg: "no version for the default ONNX operator set"}
		}
		m.Opset = 1 // IR version 1-2 models predate opset_import
	}
	ext := &externalReader{dir: dir, file: file}
	defer ext.close()
	for i, tp := range mp.Graph.Initializer {
		var t *NamedTensor
		if decode {
			t, err = decodeONNXTensor(file, tp, ext)
		} else {
			t, err = describeONNXTensor(file, tp)
		}
		if err != nil {
			return nil, err
		}
		if t.Name == "" {
			return nil, &FormatError{File: file, Record: fmt.Sprintf("initializer #%d", i), Msg: "has no name"}
		}
		if _, dup := m.ByName[t.Name]; dup {
			return nil, &FormatError{File: file, Record: "initializer " + strconv.Quote(t.Name), Msg: "defined twice"}
		}
		m.Initializers = append(m.Initializers, t)
		m.ByName[t.Name] = t
	}
	return m, nil
}

// externalReader opens the files external data points to, once each.
type externalReader struct {
	dir, file string
	open      map[string]*os.File
}

func (e *externalReader) close() {
	for _, f := range e.open {
		f.Close()
	}
}

// read returns length bytes at offset of location (length < 0: to the end).
func (e *externalReader) read(record, location string, offset, length int64) ([]byte, error) {
	if e == nil || e.dir == "" {
		return nil, &UnsupportedError{File: e.fileName(), Record: record, Msg: "external data (" + location + ") is not allowed here"}
	}
	// The location is relative to the model; refuse anything that could
	// escape its directory so a model cannot read arbitrary files.
	clean := filepath.Clean(filepath.FromSlash(location))
	if location == "" || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, &FormatError{File: e.file, Record: record, Msg: fmt.Sprintf("external data location %q must be a path relative to the model's directory", location)}
	}
	if e.open == nil {
		e.open = map[string]*os.File{}
	}
	f := e.open[clean]
	if f == nil {
		var err error
		f, err = os.Open(filepath.Join(e.dir, clean))
		if err != nil {
			return nil, &FormatError{File: e.file, Record: record, Msg: "external data: " + err.Error()}
		}
		e.open[clean] = f
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if offset < 0 || offset > size {
		return nil, &FormatError{File: e.file, Record: record, Msg: fmt.Sprintf("external data offset %d is outside %s (%d bytes)", offset, location, size)}
	}
	if length < 0 {
		length = size - offset
	}
	if length > size-offset {
		return nil, &FormatError{File: e.file, Record: record, Msg: fmt.Sprintf("external data [%d, %d+%d) runs past the end of %s (%d bytes)", offset, offset, length, location, size)}
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, offset); err != nil {
		return nil, &FormatError{File: e.file, Record: record, Msg: "external data: " + err.Error()}
	}
	return buf, nil
}

func (e *externalReader) fileName() string {
	if e == nil {
		return ""
	}
	return e.file
}

// ONNX TensorProto data types.
var onnxTypes = map[int32]struct {
	name tensor.DType
	size int
}{
	1: {tensor.Float32, 4}, 2: {"uint8", 1}, 3: {"int8", 1}, 4: {"uint16", 2}, 5: {"int16", 2},
	6: {"int32", 4}, 7: {"int64", 8}, 9: {"bool", 1}, 10: {"float16", 2}, 11: {"float64", 8},
	12: {"uint32", 4}, 13: {"uint64", 8}, 16: {"bfloat16", 2},
}

// ONNXTypeName names an ONNX element type code ("float32", ...).
func ONNXTypeName(code int32) string {
	if t, ok := onnxTypes[code]; ok {
		return string(t.name)
	}
	return fmt.Sprintf("type %d", code)
}

// onnxTensorHeader checks a TensorProto's dims and element type.
func onnxTensorHeader(file string, tp *onnxpb.TensorProto) (rec string, shape []int, n int64, dt tensor.DType, size int, err error) {
	rec = "tensor " + strconv.Quote(tp.GetName())
	if tp.Segment != nil {
		return rec, nil, 0, "", 0, &UnsupportedError{File: file, Record: rec, Msg: "segmented tensors"}
	}
	if len(tp.Dims) > maxONNXRank {
		return rec, nil, 0, "", 0, &FormatError{File: file, Record: rec, Msg: fmt.Sprintf("rank %d is more than %d", len(tp.Dims), maxONNXRank)}
	}
	shape = make([]int, len(tp.Dims))
	n = 1
	for i, d := range tp.Dims {
		if d < 0 {
			return rec, nil, 0, "", 0, &FormatError{File: file, Record: rec, Msg: fmt.Sprintf("negative dimension %d", d)}
		}
		if d > 0 && n > MaxONNXTensorValues/d {
			return rec, nil, 0, "", 0, &FormatError{File: file, Record: rec, Msg: fmt.Sprintf("dims %v hold more than %d values", tp.Dims, int64(MaxONNXTensorValues))}
		}
		n *= d
		shape[i] = int(d)
	}
	code := tp.GetDataType()
	ty, ok := onnxTypes[code]
	if !ok {
		return rec, nil, 0, "", 0, &UnsupportedError{File: file, Record: rec, Msg: fmt.Sprintf("data type %d (%s); want a float or integer type", code, onnxpb.TensorProto_DataType(code))}
	}
	return rec, shape, n, ty.name, ty.size, nil
}

// describeONNXTensor is decodeONNXTensor without the values: the name,
// shape and dtype, and raw_data's length checked when the data is inline.
func describeONNXTensor(file string, tp *onnxpb.TensorProto) (*NamedTensor, error) {
	rec, shape, n, dt, size, err := onnxTensorHeader(file, tp)
	if err != nil {
		return nil, err
	}
	if tp.RawData != nil && tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL && int64(len(tp.RawData)) != n*int64(size) {
		return nil, &FormatError{File: file, Record: rec, Msg: fmt.Sprintf("raw_data has %d bytes, want %d for %d %s values of shape %s", len(tp.RawData), n*int64(size), n, dt, tensor.ShapeString(shape))}
	}
	return &NamedTensor{Name: tp.GetName(), Tensor: &tensor.Tensor{Shape: shape, DType: dt}}, nil
}

// decodeONNXTensor decodes a TensorProto (an initialiser or a Constant's
// value). ext resolves external data; nil refuses it.
func decodeONNXTensor(file string, tp *onnxpb.TensorProto, ext *externalReader) (*NamedTensor, error) {
	rec, shape, n, dt, size, err := onnxTensorHeader(file, tp)
	if err != nil {
		return nil, err
	}
	ty := struct {
		name tensor.DType
		size int
	}{dt, size}
	t := &NamedTensor{Name: tp.GetName(), Tensor: &tensor.Tensor{Shape: shape, DType: ty.name}}
	raw := tp.RawData
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		var loc string
		off, length := int64(0), int64(-1)
		for _, kv := range tp.ExternalData {
			var err error
			switch kv.GetKey() {
			case "location":
				loc = kv.GetValue()
			case "offset":
				off, err = strconv.ParseInt(kv.GetValue(), 10, 64)
			case "length":
				length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
				if err == nil && length < 0 {
					err = fmt.Errorf("negative")
				}
			}
			if err != nil {
				return nil, &FormatError{File: file, Record: rec, Msg: fmt.Sprintf("external data %s %q: want a non-negative integer", kv.GetKey(), kv.GetValue())}
			}
		}
		if length < 0 {
			length = n * int64(ty.size)
		}
		if length != n*int64(ty.size) {
			return nil, &FormatError{File: file, Record: rec, Msg: fmt.Sprintf("external data length %d, want %d bytes for %d %s values", length, n*int64(ty.size), n, ty.name)}
		}
		b, err := ext.read(rec, loc, off, length)
		if err != nil {
			return nil, err
		}
		raw = b
	}
	if raw != nil || (tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL) {
		if int64(len(raw)) != n*int64(ty.size) {
			return nil, &FormatError{File: file, Record: rec, Msg: fmt.Sprintf("raw_data has %d bytes, want %d for %d %s values of shape %s", len(raw), n*int64(ty.size), n, ty.name, tensor.ShapeString(shape))}
		}
		t.Tensor = tensor.Decode(raw, ty.name, binary.LittleEndian, shape)
		return t, nil
	}
	// Typed fields: ONNX stores float in float_data; double in double_data;
	// float16/bfloat16/int8-32/bool in int32_data (one per int32); int64 in
	// int64_data; uint32/uint64 in uint64_data.
	count := func(have int) error {
		if int64(have) != n {
			return &FormatError{File: file, Record: rec, Msg: fmt.Sprintf("%d values for shape %s (%d wanted)", have, tensor.ShapeString(shape), n)}
		}
		return nil
	}
	switch ty.name {
	case tensor.Float32:
		if err := count(len(tp.FloatData)); err != nil {
			return nil, err
		}
		t.Data = append([]float32{}, tp.FloatData...)
	case tensor.Float64:
		if err := count(len(tp.DoubleData)); err != nil {
			return nil, err
		}
		t.Data = make([]float32, n)
		for i, v := range tp.DoubleData {
			t.Data[i] = float32(v)
		}
	case tensor.Float16, tensor.BFloat16:
		if err := count(len(tp.Int32Data)); err != nil {
			return nil, err
		}
		t.Data = make([]float32, n)
		for i, v := range tp.Int32Data {
			if ty.name == tensor.Float16 {
				t.Data[i] = tensor.HalfToFloat32(uint16(v))
			} else {
				t.Data[i] = tensor.BFloat16ToFloat32(uint16(v))
			}
		}
	case tensor.Int64:
		if err := count(len(tp.Int64Data)); err != nil {
			return nil, err
		}
		t.Ints = append([]int64{}, tp.Int64Data...)
	case tensor.Uint32, tensor.Uint64:
		if err := count(len(tp.Uint64Data)); err != nil {
			return nil, err
		}
		t.Ints = make([]int64, n)
		for i, v := range tp.Uint64Data {
			t.Ints[i] = int64(v)
		}
	default:
		if err := count(len(tp.Int32Data)); err != nil {
			return nil, err
		}
		t.Ints = make([]int64, n)
		for i, v := range tp.Int32Data {
			if ty.name == tensor.Bool && v != 0 {
				v = 1 // the one rule for booleans: non-zero is true
			}
			t.Ints[i] = int64(v)
		}
	}
	return t, nil
}

// DecodeAttributeTensor decodes a Constant node's or ConstantOfShape's
// tensor attribute (no external data).
func DecodeAttributeTensor(file string, tp *onnxpb.TensorProto) (*NamedTensor, error) {
	if tp == nil {
		return nil, &FormatError{File: file, Msg: "missing tensor attribute"}
	}
	return decodeONNXTensor(file, tp, nil)
}

// ONNXDims formats a ValueInfoProto's shape: fixed dims as numbers, symbolic
// ones by name ("?" when unnamed). ok is false when there is no tensor type.
func ONNXDims(vi *onnxpb.ValueInfoProto) (dims []string, elem string, ok bool) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return nil, "", false
	}
	for _, d := range tt.GetShape().GetDim() {
		switch {
		case isDimValue(d):
			dims = append(dims, strconv.FormatInt(d.GetDimValue(), 10))
		case d.GetDimParam() != "":
			dims = append(dims, d.GetDimParam())
		default:
			dims = append(dims, "?")
		}
	}
	return dims, ONNXTypeName(tt.GetElemType()), true
}

func isDimValue(d *onnxpb.TensorShapeProto_Dimension) bool {
	_, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue)
	return ok
}
