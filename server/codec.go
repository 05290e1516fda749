package server

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// The protocol's datatype names and the tensor dtypes they carry. BYTES
// (strings) is not served: no model here takes text.
var datatypes = map[string]tensor.DType{
	"BOOL":  tensor.Bool,
	"UINT8": tensor.Uint8, "UINT16": tensor.Uint16, "UINT32": tensor.Uint32, "UINT64": tensor.Uint64,
	"INT8": tensor.Int8, "INT16": tensor.Int16, "INT32": tensor.Int32, "INT64": tensor.Int64,
	"FP16": tensor.Float16, "FP32": tensor.Float32, "FP64": tensor.Float64, "BF16": tensor.BFloat16,
}

// dtypeOf returns the tensor dtype of a protocol datatype.
func dtypeOf(datatype string) (tensor.DType, error) {
	if dt, ok := datatypes[datatype]; ok {
		return dt, nil
	}
	if datatype == "BYTES" {
		return "", errorf(BadRequest, "datatype BYTES is not supported: the models served here take numeric tensors")
	}
	return "", errorf(BadRequest, "unknown datatype %q; want one of BOOL, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, FP16, FP32, FP64, BF16", datatype)
}

// datatypeOf returns the protocol datatype of a tensor dtype.
func datatypeOf(dt tensor.DType) (string, bool) {
	if dt == "" {
		return "FP32", true
	}
	for k, v := range datatypes {
		if v == dt {
			return k, true
		}
	}
	return "", false
}

// checkShape validates a request's shape: no negative dimension and at
// most limit elements (so nothing is allocated for an absurd shape).
func checkShape(name string, shape []int64, limit int64) ([]int, error) {
	out := make([]int, len(shape))
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return nil, errorf(BadRequest, "input %q has shape %s: dimension %d is negative", name, shapeText(shape), i)
		}
		if d > 0 && n > limit/d {
			return nil, errorf(BadRequest, "input %q has shape %s: over %d elements, more than a request of at most --max-body bytes can carry", name, shapeText(shape), limit)
		}
		n *= d
		out[i] = int(d)
	}
	if len(shape) == 0 {
		out = []int{}
	}
	return out, nil
}

// decodeRaw reads a tensor of the given dtype and shape from its
// little-endian row-major bytes.
func decodeRaw(name string, b []byte, dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	n := tensor.Numel(shape)
	if want := int64(n) * int64(dt.Size()); int64(len(b)) != want {
		return nil, errorf(BadRequest, "input %q: %d bytes of binary data for shape %s of %s (%d bytes expected)", name, len(b), tensor.ShapeString(shape), dt, want)
	}
	return tensor.Decode(b, dt, binary.LittleEndian, shape), nil
}

// jsonData parses the "data" of a JSON tensor: numbers (or true/false for
// BOOL), flat or nested in row-major order. Nested data must have exactly
// the tensor's shape; flat data must have as many values as the shape.
// NaN and Infinity are not JSON numbers and are refused with the rest of
// malformed JSON.
type jsonData struct {
	b     []byte
	i     int
	name  string
	dt    tensor.DType
	f     []float32
	ints  []int64
	depth []int  // length of the arrays seen at each depth (-1: none yet)
	kind  []int8 // what the arrays at each depth hold: 1 values, 2 arrays
	max   int    // values allowed
	count int
}

const maxNesting = 32

func decodeJSONData(name string, raw []byte, dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	n := tensor.Numel(shape)
	p := &jsonData{b: raw, name: name, dt: dt, max: n}
	if dt.IsFloat() {
		p.f = make([]float32, 0, n)
	} else {
		p.ints = make([]int64, 0, n)
	}
	p.skip()
	if p.i >= len(p.b) {
		return nil, errorf(BadRequest, "input %q has no data", name)
	}
	if p.b[p.i] == '[' {
		if _, err := p.array(0); err != nil {
			return nil, err
		}
	} else if err := p.scalar(); err != nil {
		return nil, err
	}
	p.skip()
	if p.i != len(p.b) {
		return nil, errorf(BadRequest, "input %q: unexpected text after the data at byte %d", name, p.i)
	}
	if p.count != n {
		return nil, errorf(BadRequest, "input %q: %d values in data for shape %s (%d elements)", name, p.count, tensor.ShapeString(shape), n)
	}
	if len(p.depth) > 1 {
		ok := len(p.depth) == len(shape)
		for d := 0; ok && d < len(shape); d++ {
			ok = p.depth[d] == shape[d]
		}
		if !ok {
			nest := make([]int, len(p.depth))
			copy(nest, p.depth)
			return nil, errorf(BadRequest, "input %q: nested data of shape %s does not match the shape %s (send it flat or nested exactly as the shape)", name, tensor.ShapeString(nest), tensor.ShapeString(shape))
		}
	}
	t := &tensor.Tensor{Shape: append([]int{}, shape...), DType: dt, Data: p.f, Ints: p.ints}
	if t.Data == nil && dt.IsFloat() {
		t.Data = []float32{}
	}
	return t, nil
}

func (p *jsonData) skip() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonData) errf(format string, args ...any) error {
	return errorf(BadRequest, "input %q: data at byte %d: %s", p.name, p.i, strconvf(format, args...))
}

// array parses one array at depth d and reports whether it held arrays.
func (p *jsonData) array(d int) (bool, error) {
	if d >= maxNesting {
		return false, p.errf("nested deeper than %d", maxNesting)
	}
	p.i++ // '['
	if len(p.depth) <= d {
		p.depth = append(p.depth, -1)
		p.kind = append(p.kind, 0)
	}
	n, nested := 0, false
	for {
		p.skip()
		if p.i >= len(p.b) {
			return false, p.errf("unterminated array")
		}
		if p.b[p.i] == ']' && n == 0 {
			p.i++
			break
		}
		var err error
		if p.b[p.i] == '[' {
			if n > 0 && !nested {
				return false, p.errf("an array mixes numbers and arrays")
			}
			nested = true
			_, err = p.array(d + 1)
		} else {
			if nested {
				return false, p.errf("an array mixes numbers and arrays")
			}
			err = p.scalar()
		}
		if err != nil {
			return false, err
		}
		n++
		p.skip()
		if p.i >= len(p.b) {
			return false, p.errf("unterminated array")
		}
		if p.b[p.i] == ',' {
			p.i++
			continue
		}
		if p.b[p.i] != ']' {
			return false, p.errf("want ',' or ']'")
		}
		p.i++
		break
	}
	if n > 0 {
		kind := int8(1)
		if nested {
			kind = 2
		}
		if p.kind[d] != 0 && p.kind[d] != kind {
			return false, p.errf("arrays of different depths")
		}
		p.kind[d] = kind
	}
	if p.depth[d] == -1 {
		p.depth[d] = n
	} else if p.depth[d] != n {
		return false, p.errf("ragged nested data: arrays of %d and %d values at depth %d", p.depth[d], n, d)
	}
	return nested, nil
}

func (p *jsonData) scalar() error {
	if p.count >= p.max {
		// More values than the shape holds: stop before growing buffers.
		p.count++
		return p.errf("more values than the shape's %d elements", p.max)
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		p.i++
	}
	tok := string(p.b[start:p.i])
	if p.dt == tensor.Bool {
		switch tok {
		case "true":
			p.ints = append(p.ints, 1)
		case "false":
			p.ints = append(p.ints, 0)
		default:
			p.i = start
			return p.errf("BOOL data must be true or false, got %q", clip(tok))
		}
		p.count++
		return nil
	}
	if !isJSONNumber(tok) {
		p.i = start
		return p.errf("%q is not a JSON number (NaN and Infinity cannot be sent as JSON; use binary data)", clip(tok))
	}
	if p.dt.IsFloat() {
		v, err := strconv.ParseFloat(tok, 64)
		f := float32(v)
		if p.dt == tensor.Float32 {
			var v32 float64
			v32, err = strconv.ParseFloat(tok, 32)
			f = float32(v32)
		}
		if err != nil || math.IsInf(float64(f), 0) {
			p.i = start
			return p.errf("%s is out of range for %s", clip(tok), p.dt)
		}
		switch p.dt {
		case tensor.Float16:
			f = tensor.HalfToFloat32(tensor.Float32ToHalf(f))
		case tensor.BFloat16:
			f = tensor.BFloat16ToFloat32(tensor.Float32ToBFloat16(f))
		}
		if math.IsInf(float64(f), 0) {
			p.i = start
			return p.errf("%s is out of range for %s", clip(tok), p.dt)
		}
		p.f = append(p.f, f)
		p.count++
		return nil
	}
	v, err := strconv.ParseInt(tok, 10, 64)
	if err != nil || !intFits(v, p.dt) {
		p.i = start
		return p.errf("%s is not an integer in the range of %s", clip(tok), p.dt)
	}
	p.ints = append(p.ints, v)
	p.count++
	return nil
}

// isJSONNumber reports whether s is a number as JSON writes one.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	if s[i] == '0' {
		i++
	} else if s[i] >= '1' && s[i] <= '9' {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(s)
}

func intFits(v int64, dt tensor.DType) bool {
	switch dt {
	case tensor.Int8:
		return v >= math.MinInt8 && v <= math.MaxInt8
	case tensor.Int16:
		return v >= math.MinInt16 && v <= math.MaxInt16
	case tensor.Int32:
		return v >= math.MinInt32 && v <= math.MaxInt32
	case tensor.Uint8:
		return v >= 0 && v <= math.MaxUint8
	case tensor.Uint16:
		return v >= 0 && v <= math.MaxUint16
	case tensor.Uint32:
		return v >= 0 && v <= math.MaxUint32
	case tensor.Uint64:
		return v >= 0
	}
	return true
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// appendJSONData appends t's values as a flat JSON array.
func appendJSONData(b []byte, t *tensor.Tensor) ([]byte, error) {
	b = append(b, '[')
	if t.IsFloat() {
		for i, v := range t.Data {
			if i > 0 {
				b = append(b, ',')
			}
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, errorf(Internal, "the output holds %v, which JSON cannot carry; request it with binary_data", v)
			}
			b = strconv.AppendFloat(b, f, 'g', -1, 32)
		}
	} else {
		for i, v := range t.Ints {
			if i > 0 {
				b = append(b, ',')
			}
			if t.DType == tensor.Bool {
				b = strconv.AppendBool(b, v != 0)
			} else if t.DType == tensor.Uint64 {
				b = strconv.AppendUint(b, uint64(v), 10)
			} else {
				b = strconv.AppendInt(b, v, 10)
			}
		}
	}
	return append(b, ']'), nil
}

// rawBytes returns t's little-endian bytes.
func rawBytes(t *tensor.Tensor) []byte {
	return t.Encode(make([]byte, 0, t.Len()*max(1, t.DType.Size())), binary.LittleEndian)
}
