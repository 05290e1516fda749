package loader

import (
	"github.com/convlstm-go/convlstm-go/tensor"
	"slices"

	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const npyDir = "testdata/npy"

// npyExpect is one entry of testdata/npy/expected.json, written by
// scripts/make_npy_fixtures.py from NumPy's own float32 conversion.
type npyExpect struct {
	File  string   `json:"file"`
	Key   string   `json:"key"`
	Shape []int    `json:"shape"`
	DType string   `json:"dtype"`
	Bits  []uint32 `json:"bits"`
}

func loadNPYExpect(t *testing.T) []npyExpect {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(npyDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var es []npyExpect
	if err := json.Unmarshal(b, &es); err != nil {
		t.Fatal(err)
	}
	if len(es) < 20 {
		t.Fatalf("expected.json has only %d entries", len(es))
	}
	return es
}

func checkTensorAgainst(t *testing.T, what string, got *tensor.Tensor, e npyExpect) {
	t.Helper()
	if string(got.DType) != e.DType {
		t.Errorf("%s: DType = %q, want %q", what, got.DType, e.DType)
	}
	if !reflect.DeepEqual(got.Shape, e.Shape) {
		t.Errorf("%s: Shape = %v, want %v", what, got.Shape, e.Shape)
	}
	if got.Shape == nil {
		t.Errorf("%s: Shape is nil, want non-nil (empty for 0-d)", what)
	}
	if got.Len() != len(e.Bits) {
		t.Fatalf("%s: %d values, want %d", what, got.Len(), len(e.Bits))
	}
	if got.IsFloat() == (got.Ints != nil) {
		t.Fatalf("%s: a %s tensor with %d floats and %d integers", what, got.DType, len(got.Data), len(got.Ints))
	}
	// Integers and bools are held exactly; NumPy's float32 conversion of
	// them is what the fixture records.
	for i, v := range got.Floats() {
		gb := math.Float32bits(v)
		w := math.Float32frombits(e.Bits[i])
		if gb == e.Bits[i] {
			continue
		}
		// float64 -> float32 NaN payloads are hardware-defined; any NaN
		// will do there. Everything else must match bit for bit.
		if e.DType == "float64" && v != v && w != w {
			continue
		}
		t.Errorf("%s: Data[%d] = %v (%#08x), want %v (%#08x)", what, i, v, gb, w, e.Bits[i])
	}
}

func TestReadNPYFixtures(t *testing.T) {
	n := 0
	for _, e := range loadNPYExpect(t) {
		if e.Key != "" {
			continue
		}
		n++
		path := filepath.Join(npyDir, e.File)
		got, err := ReadNPY(path)
		if err != nil {
			t.Errorf("ReadNPY(%s): %v", e.File, err)
			continue
		}
		checkTensorAgainst(t, e.File, got, e)

		// Same through DecodeNPY with an unknown size (growing output).
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got2, err := DecodeNPY(e.File, io.MultiReader(bytes.NewReader(raw)), -1)
		if err != nil {
			t.Errorf("DecodeNPY(%s, size -1): %v", e.File, err)
			continue
		}
		checkTensorAgainst(t, e.File+" (size -1)", got2, e)
		if !IsNPY(raw) || IsNPZ(raw) {
			t.Errorf("%s: IsNPY=%v IsNPZ=%v", e.File, IsNPY(raw), IsNPZ(raw))
		}
	}
	if n < 18 {
		t.Errorf("only %d .npy fixtures checked", n)
	}
}

func TestReadNPZFixtures(t *testing.T) {
	byFile := map[string][]npyExpect{}
	var files []string
	for _, e := range loadNPYExpect(t) {
		if e.Key == "" {
			continue
		}
		if byFile[e.File] == nil {
			files = append(files, e.File)
		}
		byFile[e.File] = append(byFile[e.File], e)
	}
	if len(files) != 2 {
		t.Fatalf("npz fixtures = %v, want 2", files)
	}
	for _, f := range files {
		path := filepath.Join(npyDir, f)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !IsNPZ(raw) || IsNPY(raw) {
			t.Errorf("%s: IsNPZ=%v IsNPY=%v", f, IsNPZ(raw), IsNPY(raw))
		}
		for _, via := range []string{"ReadNPZ", "ReadNPZBytes"} {
			var ts map[string]*tensor.Tensor
			var keys []string
			if via == "ReadNPZ" {
				ts, keys, err = ReadNPZ(path)
			} else {
				ts, keys, err = ReadNPZBytes(f, raw)
			}
			if err != nil {
				t.Errorf("%s(%s): %v", via, f, err)
				continue
			}
			var wantKeys []string
			for _, e := range byFile[f] {
				wantKeys = append(wantKeys, e.Key)
				got := ts[e.Key]
				if got == nil {
					t.Errorf("%s(%s): key %q missing", via, f, e.Key)
					continue
				}
				checkTensorAgainst(t, via+" "+f+":"+e.Key, got, e)
			}
			if !reflect.DeepEqual(keys, wantKeys) || len(ts) != len(wantKeys) {
				t.Errorf("%s(%s): keys %v (%d tensors), want %v", via, f, keys, len(ts), wantKeys)
			}
		}
	}
}

// makeNPY assembles a .npy stream from a raw header dict and data.
func makeNPY(major byte, dict string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.WriteByte(major)
	b.WriteByte(0)
	h := dict + "\n"
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(h)))
	}
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

func f4Bytes(vs ...float32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func dictFor(descr, fortran, shape string) string {
	return fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, fortran, shape)
}

func TestDecodeNPYHeaderVariants(t *testing.T) {
	data := f4Bytes(1, 2, 3, 4, 5, 6)
	for _, dict := range []string{
		dictFor("<f4", "False", "(2, 3)"),
		`{"descr":"<f4","fortran_order":False,"shape":(2,3)}`,
		`{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}   `,
		"{ 'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }",
	} {
		for _, major := range []byte{1, 2, 3} {
			raw := makeNPY(major, dict, data)
			got, err := DecodeNPY("v.npy", bytes.NewReader(raw), int64(len(raw)))
			if err != nil {
				t.Errorf("v%d %s: %v", major, dict, err)
				continue
			}
			if !reflect.DeepEqual(got.Shape, []int{2, 3}) || !reflect.DeepEqual(got.Data, []float32{1, 2, 3, 4, 5, 6}) {
				t.Errorf("v%d %s: got %v %v", major, dict, got.Shape, got.Data)
			}
		}
	}
	// Fortran 1-d and 0-d are identical to C order.
	for _, shape := range []string{"(6,)", "(1, 6)", "(6, 1)"} {
		raw := makeNPY(1, dictFor("<f4", "True", shape), data)
		got, err := DecodeNPY("f.npy", bytes.NewReader(raw), int64(len(raw)))
		if err != nil || !reflect.DeepEqual(got.Data, []float32{1, 2, 3, 4, 5, 6}) {
			t.Errorf("fortran %s: %v %v", shape, got, err)
		}
	}
	// Fortran 2x3: column-major [1 2 3 4 5 6] is rows [1 3 5] [2 4 6].
	raw := makeNPY(1, dictFor("<f4", "True", "(2, 3)"), data)
	got, err := DecodeNPY("f.npy", bytes.NewReader(raw), int64(len(raw)))
	if err != nil || !reflect.DeepEqual(got.Data, []float32{1, 3, 5, 2, 4, 6}) {
		t.Errorf("fortran (2, 3): %v %v", got, err)
	}
}

// TestNPYErrors: every malformed input gives a typed error naming the
// file and saying what was expected; nothing panics.
func TestNPYErrors(t *testing.T) {
	good := makeNPY(1, dictFor("<f4", "False", "(2, 3)"), f4Bytes(1, 2, 3, 4, 5, 6))
	hugeHeader := []byte("\x93NUMPY\x02\x00\xf0\xff\xff\xff{")
	cases := []struct {
		name        string
		raw         []byte
		unsupported bool
		want        string
	}{
		{"empty", nil, false, "magic"},
		{"short magic", []byte("\x93NUM"), false, "magic"},
		{"bad magic", append([]byte("PK\x03\x04NUMPY"), good[10:]...), false, "bad magic"},
		{"version 4.0", append([]byte("\x93NUMPY\x04\x00"), good[8:]...), true, "version 4.0"},
		{"version 1.1", append([]byte("\x93NUMPY\x01\x01"), good[8:]...), true, "version 1.1"},
		{"no header length", good[:9], false, "truncated header length"},
		{"truncated header", good[:40], false, "truncated header"},
		{"absurd header length", hugeHeader, false, "absurd header length"},
		{"truncated data", good[:len(good)-3], false, "needs 24 bytes, only 21 present"},
		{"no data", good[:len(good)-24], false, "needs 24 bytes, only 0 present"},
		{"trailing data", append(append([]byte{}, good...), 0, 0, 0, 0), false, "trailing"},
		{"not a dict", makeNPY(1, "['<f4', False, (2, 3)]", nil), false, "want a dict"},
		{"missing shape", makeNPY(1, "{'descr': '<f4', 'fortran_order': False}", nil), false, `missing key "shape"`},
		{"extra key", makeNPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", nil), false, `unexpected key "x"`},
		{"duplicate key", makeNPY(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}", nil), false, "duplicate key"},
		{"shape list", makeNPY(1, dictFor("<f4", "False", "[2, 3]"), nil), false, "want a tuple"},
		{"shape not tuple", makeNPY(1, dictFor("<f4", "False", "(6)"), nil), false, "want (n,)"},
		{"negative dim", makeNPY(1, dictFor("<f4", "False", "(-1, 3)"), nil), false, "non-negative integer"},
		{"float dim", makeNPY(1, dictFor("<f4", "False", "(2.5,)"), nil), false, "want ',' or ')'"},
		{"huge dim", makeNPY(1, dictFor("<f4", "False", "(99999999999999999999999,)"), nil), false, "absurd dimension"},
		{"shape overflow", makeNPY(1, dictFor("<f4", "False", "(4294967296, 4294967296, 4294967296)"), nil), false, "overflows"},
		{"absurd shape", makeNPY(1, dictFor("<f4", "False", "(100000, 100000)"), f4Bytes(1, 2)), false, "needs 40000000000 bytes, only 8 present"},
		{"fortran_order string", makeNPY(1, dictFor("<f4", "'no'", "(2, 3)"), nil), false, "want True or False"},
		{"garbage after dict", makeNPY(1, dictFor("<f4", "False", "(2, 3)")+" x", nil), false, "after the dict"},
		{"unterminated string", makeNPY(1, "{'descr: '<f4'}", nil), false, "want ':'"},
		{"bad descr", makeNPY(1, dictFor("f4", "False", "(2,)"), nil), false, "bad dtype descr"},
		{"non-canonical descr", makeNPY(1, dictFor("<f+4", "False", "(2,)"), make([]byte, 8)), false, "bad dtype descr"},
		{"object", makeNPY(1, dictFor("|O", "False", "(2,)"), make([]byte, 16)), true, "pickled object arrays are never loaded"},
		{"complex", makeNPY(1, dictFor("<c8", "False", "(2,)"), make([]byte, 16)), true, "'<c8' is not supported"},
		{"unicode", makeNPY(1, dictFor("<U3", "False", "(2,)"), make([]byte, 24)), true, "'<U3' is not supported"},
		{"datetime", makeNPY(1, dictFor("<M8[ns]", "False", "(1,)"), make([]byte, 8)), true, "'<M8[ns]' is not supported"},
		{"native order", makeNPY(1, dictFor("=f4", "False", "(2,)"), make([]byte, 8)), true, "no explicit byte order"},
		{"structured", makeNPY(1, "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }", make([]byte, 16)), true, "structured"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		name := strings.ReplaceAll(c.name, " ", "_") + ".npy"
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, c.raw, 0o644); err != nil {
			t.Fatal(err)
		}
		check := func(via, file string, tens *tensor.Tensor, err error) {
			t.Helper()
			if err == nil {
				t.Errorf("%s %s: no error, got %v", c.name, via, tens)
				return
			}
			var fe *FormatError
			var ue *UnsupportedError
			if c.unsupported && !errors.As(err, &ue) || !c.unsupported && !errors.As(err, &fe) {
				t.Errorf("%s %s: error type %T (%v)", c.name, via, err, err)
			}
			if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s %s: error %q does not mention %q and %q", c.name, via, err, file, c.want)
			}
		}
		tens, err := ReadNPY(path)
		check("ReadNPY", path, tens, err)
		tens, err = DecodeNPY(name, bytes.NewReader(c.raw), -1)
		// With an unknown size the messages about the byte count differ.
		if err == nil || !strings.Contains(c.want, "present") {
			check("DecodeNPY(-1)", name, tens, err)
		} else if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "truncated data") {
			t.Errorf("%s DecodeNPY(-1): %v", c.name, err)
		}
	}
	// Object fixture written by NumPy itself.
	_, err := ReadNPY(filepath.Join(npyDir, "object.npy"))
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "object.npy") || !strings.Contains(err.Error(), "pickled") {
		t.Errorf("object.npy: %v", err)
	}
}

// zipOf builds a zip archive of name/content pairs.
func zipOf(t *testing.T, method uint16, kv ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i < len(kv); i += 2 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: kv[i], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(kv[i+1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestNPZErrors(t *testing.T) {
	good := string(makeNPY(1, dictFor("<f4", "False", "(2,)"), f4Bytes(1, 2)))
	trunc := good[:len(good)-2]
	obj := string(makeNPY(1, dictFor("|O", "False", "(1,)"), make([]byte, 8)))
	comp, err := os.ReadFile(filepath.Join(npyDir, "arrays_compressed.npz"))
	if err != nil {
		t.Fatal(err)
	}
	corrupt := append([]byte{}, comp...)
	// Flip a byte inside the first entry's deflate stream (after its
	// 30-byte local header, name and extra field).
	off := 30 + int(binary.LittleEndian.Uint16(comp[26:])) + int(binary.LittleEndian.Uint16(comp[28:]))
	corrupt[off+40] ^= 0x55
	badCRC := zipOf(t, zip.Store, "a.npy", good)
	badCRC[30+len("a.npy")+len(good)-1] ^= 0x01 // last data byte
	cases := []struct {
		name, want, key string
		raw             []byte
	}{
		{"stored checksum mismatch", "checksum", "a", badCRC},
		{"not zip", "not a valid .npz", "", []byte("hello world, not a zip file at all")},
		{"truncated archive", "not a valid .npz", "", comp[:len(comp)-30]},
		{"stored truncated member", "truncated data", "x", zipOf(t, zip.Store, "a.npy", good, "x.npy", trunc)},
		{"deflated truncated member", "truncated data", "x", zipOf(t, zip.Deflate, "a.npy", good, "x.npy", trunc)},
		{"object member", "pickled", "o", zipOf(t, zip.Deflate, "o.npy", obj)},
		{"non-npy member", "not a .npy array", "notes.txt", zipOf(t, zip.Store, "a.npy", good, "notes.txt", "hi")},
		{"duplicate key", "duplicate key", "a", zipOf(t, zip.Store, "a.npy", good, "a.npy", good)},
		{"corrupt deflate", "weight", "weight", corrupt},
	}
	for _, c := range cases {
		name := strings.ReplaceAll(c.name, " ", "_") + ".npz"
		ts, _, err := ReadNPZBytes(name, c.raw)
		if err == nil {
			t.Errorf("%s: no error, got %v", c.name, ts)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, name) || !strings.Contains(msg, c.want) || !strings.Contains(msg, c.key) {
			t.Errorf("%s: error %q should mention %q, %q and key %q", c.name, msg, name, c.want, c.key)
		}
	}
	if _, _, err := ReadNPZ(filepath.Join(t.TempDir(), "missing.npz")); err == nil || !strings.Contains(err.Error(), "missing.npz") {
		t.Errorf("missing file: %v", err)
	}
}

func TestWriteNPYRoundTrip(t *testing.T) {
	dir := t.TempDir()
	nan := float32(math.NaN())
	for i, tc := range []*tensor.Tensor{
		{Shape: []int{}, Data: []float32{3.25}},
		{Shape: []int{0, 3}, Data: []float32{}},
		{Shape: []int{5}, Data: []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), nan, 1e-45}},
		{Shape: []int{1, 2, 1, 3, 2}, Data: []float32{-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5}},
		{Shape: []int{70000}, Data: make([]float32, 70000)}, // > one write chunk
	} {
		if len(tc.Data) == 70000 {
			for j := range tc.Data {
				tc.Data[j] = float32(j) * 0.25
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("t%d.npy", i))
		if err := WriteNPY(path, tc); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		hl := int(binary.LittleEndian.Uint16(raw[8:10]))
		if (10+hl)%64 != 0 || raw[9+hl] != '\n' || raw[6] != 1 {
			t.Errorf("%v: preamble of %d bytes, not NumPy's 64-byte aligned v1.0 layout", tc.Shape, 10+hl)
		}
		got, err := ReadNPY(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != "float32" || !reflect.DeepEqual(got.Shape, tc.Shape) || len(got.Data) != len(tc.Data) {
			t.Fatalf("%v: got %v %s", tc.Shape, got.Shape, got.DType)
		}
		for j := range got.Data {
			if math.Float32bits(got.Data[j]) != math.Float32bits(tc.Data[j]) {
				t.Fatalf("%v: Data[%d] = %v, want %v", tc.Shape, j, got.Data[j], tc.Data[j])
			}
		}
	}
	// Byte-identical to np.save for little-endian C-order float32 arrays.
	for _, f := range []string{"f4_le.npy", "scalar_0d.npy", "five_d.npy", "empty_0x3.npy", "v2_f4.npy"} {
		want, err := os.ReadFile(filepath.Join(npyDir, f))
		if err != nil {
			t.Fatal(err)
		}
		tens, err := ReadNPY(filepath.Join(npyDir, f))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, f)
		if err := WriteNPY(path, tens); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if f == "v2_f4.npy" { // we write 1.0 when the header fits; same data
			if !bytes.Equal(got[len(got)-24:], want[len(want)-24:]) || got[6] != 1 {
				t.Errorf("%s: data differs", f)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("WriteNPY(%s) differs from np.save:\n got %q\nwant %q", f, got, want)
		}
	}
}

func TestWriteNPYErrorsLeaveNoFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.npy")
	for _, tc := range []*tensor.Tensor{
		nil,
		{Shape: []int{2, 3}, Data: make([]float32, 5)},
		{Shape: []int{-1}, Data: nil},
	} {
		if err := WriteNPY(path, tc); err == nil || !strings.Contains(err.Error(), "bad.npy") {
			t.Errorf("WriteNPY(%v): %v", tc, err)
		}
	}
	if err := WriteNPY(filepath.Join(dir, "no", "such", "dir.npy"), &tensor.Tensor{Shape: []int{}, Data: []float32{1}}); err == nil {
		t.Error("WriteNPY into a missing directory succeeded")
	}
	ts := map[string]*tensor.Tensor{"a": {Shape: []int{1}, Data: []float32{1}}}
	for _, keys := range [][]string{{"a", "b"}, {"a", "a"}, {""}} {
		if err := WriteNPZ(filepath.Join(dir, "bad.npz"), keys, ts); err == nil {
			t.Errorf("WriteNPZ(%q) succeeded", keys)
		}
	}
	// An existing file is replaced only on success.
	old := filepath.Join(dir, "keep.npy")
	os.WriteFile(old, []byte("old"), 0o644)
	WriteNPY(old, &tensor.Tensor{Shape: []int{3}, Data: []float32{1}})
	if b, _ := os.ReadFile(old); string(b) != "old" {
		t.Errorf("failed WriteNPY clobbered the existing file")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("left behind: %v", names)
	}
}

func TestWriteNPZRoundTrip(t *testing.T) {
	dir := t.TempDir()
	keys := []string{"zeta", "alpha", "h_0", "scalar", "empty"}
	ts := map[string]*tensor.Tensor{
		"zeta":   {Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		"alpha":  {Shape: []int{1}, Data: []float32{float32(math.Inf(-1))}},
		"h_0":    {Shape: []int{1, 2, 1, 1, 2}, Data: []float32{-1, -2, -3, -4}},
		"scalar": {Shape: []int{}, Data: []float32{42}},
		"empty":  {Shape: []int{0}, Data: []float32{}},
		"unused": {Shape: []int{1}, Data: []float32{9}},
	}
	path := filepath.Join(dir, "out.npz")
	if err := WriteNPZ(path, keys, ts); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !IsNPZ(raw) || IsNPY(raw) {
		t.Errorf("IsNPZ=%v IsNPY=%v on WriteNPZ output", IsNPZ(raw), IsNPY(raw))
	}
	got, gotKeys, err := ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotKeys, keys) || len(got) != len(keys) {
		t.Fatalf("keys %v, want %v", gotKeys, keys)
	}
	for _, k := range keys {
		w := *ts[k]
		w.DType = "float32"
		if !reflect.DeepEqual(got[k], &w) {
			t.Errorf("%s: got %+v, want %+v", k, got[k], w)
		}
	}
	// Entries are stored (like np.savez), with sizes in the local header.
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Method != zip.Store || f.Flags&0x8 != 0 {
			t.Errorf("%s: method %d flags %#x", f.Name, f.Method, f.Flags)
		}
	}
	// Deterministic output.
	path2 := filepath.Join(dir, "out2.npz")
	if err := WriteNPZ(path2, keys, ts); err != nil {
		t.Fatal(err)
	}
	if raw2, _ := os.ReadFile(path2); !bytes.Equal(raw, raw2) {
		t.Error("WriteNPZ output is not reproducible")
	}
}

func TestIsNPYIsNPZ(t *testing.T) {
	for _, c := range []struct {
		head       string
		npy, npz   bool
		annotation string
	}{
		{"", false, false, "empty"},
		{"\x93NUMP", false, false, "short magic"},
		{"\x93NUMPY\x01\x00", true, false, "npy"},
		{"PK\x03\x04" + strings.Repeat("\x00", 22) + "\x05\x00\x00\x00a.npy", false, true, "npz"},
		{"PK\x03\x04" + strings.Repeat("\x00", 22) + "\x05\x00\x00\x00a.txt", false, false, "zip"},
		{"PK\x03\x04" + strings.Repeat("\x00", 22) + "\x05\x00\x00\x00a.n", false, false, "name cut off"},
		{"PK\x05\x06" + strings.Repeat("\x00", 18), false, false, "empty zip"},
	} {
		if IsNPY([]byte(c.head)) != c.npy || IsNPZ([]byte(c.head)) != c.npz {
			t.Errorf("%s: IsNPY=%v IsNPZ=%v", c.annotation, IsNPY([]byte(c.head)), IsNPZ([]byte(c.head)))
		}
	}
}

func TestFortranToCLarge(t *testing.T) {
	shape := []int{3, 4, 5, 2}
	n := 120
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(i)
	}
	got := npyFortranToC(src, shape)
	// Element (a,b,c,d) is at Fortran offset a+3(b+4(c+5d)) and C offset
	// ((a*4+b)*5+c)*2+d.
	for a := 0; a < 3; a++ {
		for b := 0; b < 4; b++ {
			for c := 0; c < 5; c++ {
				for d := 0; d < 2; d++ {
					if got[((a*4+b)*5+c)*2+d] != float32(a+3*(b+4*(c+5*d))) {
						t.Fatalf("(%d,%d,%d,%d) wrong", a, b, c, d)
					}
				}
			}
		}
	}
}

// Integer and bool arrays keep their dtype and exact values through
// WriteNPZ and ReadNPZ (graph outputs such as shapes, indices and masks).
func TestNPZIntsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ints.npz")
	ts := map[string]*tensor.Tensor{
		"i64":  tensor.FromInts(tensor.Int64, []int64{math.MaxInt64, -1, 0, 1 << 40}, 2, 2),
		"mask": tensor.FromInts(tensor.Bool, []int64{1, 0, 1}, 3),
		"f":    tensor.FromFloats([]float32{1.5, -2}, 2),
	}
	if err := WriteNPZ(path, []string{"i64", "mask", "f"}, ts); err != nil {
		t.Fatal(err)
	}
	got, keys, err := ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"i64", "mask", "f"}) {
		t.Fatalf("keys %v", keys)
	}
	for k, want := range ts {
		g := got[k]
		if g.DType != want.DType || !slices.Equal(g.Shape, want.Shape) || !slices.Equal(g.Ints, want.Ints) || !slices.Equal(g.Data, want.Data) {
			t.Errorf("%s: got %+v, want %+v", k, g, want)
		}
	}
}
