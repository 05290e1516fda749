package loader

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// MaxSafetensorsHeader bounds the JSON header (the reference implementation
// uses the same 100 MB limit).
const MaxSafetensorsHeader = 100 << 20

// safetensors dtypes we convert to float32, with their sizes.
var stDTypes = map[string]struct {
	name tensor.DType
	size int
}{
	"F32": {"float32", 4}, "F64": {"float64", 8}, "F16": {"float16", 2}, "BF16": {"bfloat16", 2},
	"I64": {"int64", 8}, "I32": {"int32", 4}, "I16": {"int16", 2}, "I8": {"int8", 1},
	"U8": {"uint8", 1}, "BOOL": {"bool", 1},
}

type stEntry struct {
	name        string
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
	begin, end  int64
}

// LoadSafetensors reads a .safetensors file. The header is validated as
// strictly as the reference implementation does: its length must fit the
// file, it must be one JSON object with no duplicate keys, every entry must
// have a known dtype, a non-negative shape whose byte size equals its
// data_offsets span, and the spans must tile the data area exactly (no
// overlap, no gap, nothing past the end). Tensors are converted to float32
// and listed in data order; string entries of __metadata__ are kept,
// uninterpreted, in Checkpoint.Metadata.
func LoadSafetensors(path string) (*Checkpoint, error) {
	return safetensorsFile(path, true)
}

// InspectSafetensors reads only the header: names, shapes, dtypes and
// metadata, with every check LoadSafetensors makes on them (spans against
// dtypes, shapes and the file's size), but no tensor data (Data and Ints
// are nil).
func InspectSafetensors(path string) (*Checkpoint, error) {
	return safetensorsFile(path, false)
}

// LoadSafetensorsBytes is LoadSafetensors over memory; name is used in errors.
func LoadSafetensorsBytes(name string, data []byte) (*Checkpoint, error) {
	return decodeSafetensors(name, bytes.NewReader(data), int64(len(data)), true)
}

// InspectSafetensorsBytes is InspectSafetensors over memory.
func InspectSafetensorsBytes(name string, data []byte) (*Checkpoint, error) {
	return decodeSafetensors(name, bytes.NewReader(data), int64(len(data)), false)
}

func safetensorsFile(path string, withData bool) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return decodeSafetensors(path, f, st.Size(), withData)
}

func decodeSafetensors(file string, ra io.ReaderAt, size int64, withData bool) (*Checkpoint, error) {
	ferr := func(rec, format string, args ...any) error {
		return &FormatError{File: file, Record: rec, Msg: fmt.Sprintf(format, args...)}
	}
	if size < 8 {
		return nil, ferr("", "%d bytes: too short for a safetensors file (8-byte header length, then a JSON header)", size)
	}
	var lb [8]byte
	if _, err := ra.ReadAt(lb[:], 0); err != nil {
		return nil, err
	}
	hl := binary.LittleEndian.Uint64(lb[:])
	if hl < 2 || hl > MaxSafetensorsHeader || hl > uint64(size-8) {
		return nil, ferr("header", "header length %d: want 2 to %d bytes and within the file's %d bytes", hl, min(int64(MaxSafetensorsHeader), size-8), size)
	}
	hb := make([]byte, hl)
	if _, err := ra.ReadAt(hb, 8); err != nil {
		return nil, err
	}
	if hb[0] != '{' {
		return nil, ferr("header", "does not start with '{'")
	}
	entries, meta, err := parseSTHeader(file, hb)
	if err != nil {
		return nil, err
	}
	dataStart := 8 + int64(hl)
	dataLen := size - dataStart
	// Every entry's span must match its dtype and shape...
	for _, e := range entries {
		rec := "tensor " + e.name
		dt, ok := stDTypes[e.DType]
		if !ok {
			return nil, &UnsupportedError{File: file, Record: rec, Msg: fmt.Sprintf("dtype %q: supported are F32, F64, F16, BF16 and the integer types I64, I32, I16, I8, U8, BOOL", e.DType)}
		}
		if len(e.DataOffsets) != 2 {
			return nil, ferr(rec, "data_offsets %v: want [begin, end]", e.DataOffsets)
		}
		if e.Shape == nil {
			return nil, ferr(rec, "missing shape")
		}
		if len(e.Shape) > maxONNXRank {
			return nil, ferr(rec, "rank %d is more than %d", len(e.Shape), maxONNXRank)
		}
		n := int64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return nil, ferr(rec, "negative dimension in shape %v", e.Shape)
			}
			if d > 0 && n > (dataLen+1)/d {
				return nil, ferr(rec, "shape %v holds more values than the %d data bytes", e.Shape, dataLen)
			}
			n *= d
		}
		e.begin, e.end = e.DataOffsets[0], e.DataOffsets[1]
		if e.begin < 0 || e.end < e.begin || e.end > dataLen {
			return nil, ferr(rec, "data_offsets [%d, %d] are not within the %d data bytes", e.begin, e.end, dataLen)
		}
		if e.end-e.begin != n*int64(dt.size) {
			return nil, ferr(rec, "data_offsets [%d, %d] span %d bytes; shape %v of %s needs %d", e.begin, e.end, e.end-e.begin, e.Shape, e.DType, n*int64(dt.size))
		}
	}
	// ...and the spans must tile the data area.
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].begin != entries[j].begin {
			return entries[i].begin < entries[j].begin
		}
		return entries[i].end < entries[j].end
	})
	pos := int64(0)
	for _, e := range entries {
		if e.begin < pos {
			return nil, ferr("tensor "+e.name, "data_offsets [%d, %d] overlap the previous tensor's data (which ends at %d)", e.begin, e.end, pos)
		}
		if e.begin > pos {
			return nil, ferr("tensor "+e.name, "a gap of %d bytes before data_offsets [%d, %d]: the tensors must cover the data area exactly", e.begin-pos, e.begin, e.end)
		}
		pos = e.end
	}
	if pos != dataLen {
		return nil, ferr("", "the tensors cover %d data bytes but the file holds %d after the header", pos, dataLen)
	}
	ck := &Checkpoint{File: file, Format: FormatSafetensors, Tensors: map[string]*tensor.Tensor{}, Metadata: meta}
	for _, e := range entries {
		dt := stDTypes[e.DType]
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			shape[i] = int(d)
		}
		ck.Names = append(ck.Names, e.name)
		if !withData {
			ck.Tensors[e.name] = &tensor.Tensor{Shape: shape, DType: dt.name}
			continue
		}
		raw := make([]byte, e.end-e.begin)
		if _, err := ra.ReadAt(raw, dataStart+e.begin); err != nil && !(err == io.EOF && len(raw) == 0) {
			return nil, ferr("tensor "+e.name, "reading data: %v", err)
		}
		ck.Tensors[e.name] = tensor.Decode(raw, dt.name, binary.LittleEndian, shape)
	}
	return ck, nil
}

// parseSTHeader walks the header's top-level object token by token so that
// duplicate keys are caught (encoding/json would keep the last silently).
func parseSTHeader(file string, hb []byte) ([]*stEntry, map[string]string, error) {
	ferr := func(rec, format string, args ...any) error {
		return &FormatError{File: file, Record: rec, Msg: fmt.Sprintf(format, args...)}
	}
	// Trailing spaces pad the header to an 8-byte boundary.
	body := bytes.TrimRight(hb, " ")
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, ferr("header", "not a JSON object")
	}
	seen := map[string]bool{}
	var entries []*stEntry
	var meta map[string]string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, ferr("header", "invalid JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, ferr("header", "invalid JSON key %v", tok)
		}
		if seen[key] {
			return nil, nil, ferr("header", "key %q appears twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, ferr(key, "invalid JSON: %v", err)
		}
		if key == "__metadata__" {
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, ferr(key, "want an object of strings: %v", err)
			}
			continue
		}
		e := &stEntry{name: key}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(e); err != nil {
			return nil, nil, ferr("tensor "+key, "want {\"dtype\", \"shape\", \"data_offsets\"}: %v", err)
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, ferr("header", "invalid JSON: %v", err)
	}
	if rest := body[dec.InputOffset():]; len(bytes.TrimSpace(rest)) != 0 {
		return nil, nil, ferr("header", "data after the JSON object")
	}
	return entries, meta, nil
}
