package loader

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// The fixtures come from scripts/make_pt_fixtures.py (torch 1.13); each
// fixtures/pt/X.pt has X.npz with the expected tensors as float32, keyed
// by flattened name in the order LoadPT must list them.

func ptFixtures(t *testing.T) []string {
	files, err := filepath.Glob("../fixtures/pt/*.pt")
	if err != nil || len(files) < 15 {
		t.Fatalf("fixtures/pt: %v (%d files)", err, len(files))
	}
	return files
}

// sameFloats compares bit for bit, except that any NaN equals any NaN.
func sameFloats(a, b []float32) (int, bool) {
	if len(a) != len(b) {
		return -1, false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return i, false
		}
	}
	return 0, true
}

func checkAgainstNPZ(t *testing.T, ck *Checkpoint, npz string, withData bool) {
	t.Helper()
	want, keys, err := ReadNPZ(npz)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ck.Names, keys) {
		t.Fatalf("names\n got %q\nwant %q", ck.Names, keys)
	}
	if len(ck.Tensors) != len(keys) {
		t.Errorf("%d tensors in map, %d names", len(ck.Tensors), len(keys))
	}
	for _, k := range keys {
		got, w := ck.Tensors[k], want[k]
		if got == nil {
			t.Errorf("%s: missing", k)
			continue
		}
		if !slices.Equal(got.Shape, w.Shape) {
			t.Errorf("%s: shape %v, want %v", k, got.Shape, w.Shape)
		}
		if got.DType == "" {
			t.Errorf("%s: empty DType", k)
		}
		if !withData {
			if got.Data != nil || got.Ints != nil {
				t.Errorf("%s: Inspect returned data", k)
			}
			continue
		}
		if err := got.Check(); err != nil || got.IsFloat() != got.DType.IsFloat() {
			t.Errorf("%s: %v (dtype %s)", k, err, got.DType)
		}
		if !got.IsFloat() && !w.IsFloat() && !slices.Equal(got.Ints, w.Ints) {
			t.Errorf("%s: %v, want %v", k, got.Ints, w.Ints)
		}
		gf, wf := got.Floats(), w.Floats()
		if i, ok := sameFloats(gf, wf); !ok {
			if i < 0 {
				t.Errorf("%s: %d values, want %d", k, len(gf), len(wf))
			} else {
				t.Errorf("%s: [%d] = %v (%08x), want %v (%08x)", k, i, gf[i], math.Float32bits(gf[i]), wf[i], math.Float32bits(wf[i]))
			}
		}
	}
}

func TestPTFixtures(t *testing.T) {
	for _, f := range ptFixtures(t) {
		base := strings.TrimSuffix(filepath.Base(f), ".pt")
		t.Run(base, func(t *testing.T) {
			npz := strings.TrimSuffix(f, ".pt") + ".npz"
			ck, err := LoadPT(f)
			if err != nil {
				t.Fatal(err)
			}
			wantFormat := "pytorch-zip"
			if strings.Contains(base, "legacy") {
				wantFormat = "pytorch-legacy"
			}
			if ck.Format != wantFormat || ck.File != f {
				t.Errorf("Format %q File %q, want %q %q", ck.Format, ck.File, wantFormat, f)
			}
			checkAgainstNPZ(t, ck, npz, true)

			ins, err := InspectPT(f)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstNPZ(t, ins, npz, false)

			data, _ := os.ReadFile(f)
			mem, err := LoadPTBytes("mem:"+base, data)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstNPZ(t, mem, npz, true)
			if !IsPT(data[:min(len(data), 512)]) || !IsPT(data) {
				t.Error("IsPT false")
			}
		})
	}
}

func TestPTDTypes(t *testing.T) {
	ck, err := LoadPT("../fixtures/pt/dtypes.pt")
	if err != nil {
		t.Fatal(err)
	}
	for name, dt := range map[string]tensor.DType{"f32": "float32", "f64": "float64", "f16": "float16", "bf16": "bfloat16",
		"i64": "int64", "i32": "int32", "u8": "uint8", "i8": "int8", "i16": "int16", "b": "bool", "num_batches_tracked": "int64"} {
		if got := ck.Tensors[name].DType; got != dt {
			t.Errorf("%s: DType %q, want %q", name, got, dt)
		}
	}
	// Spot-check the awkward half values independently of the npz.
	h := ck.Tensors["f16"].Data
	if !math.IsInf(float64(h[5]), 1) || !math.IsInf(float64(h[6]), -1) || h[7] == h[7] {
		t.Errorf("f16 specials: %v", h[5:8])
	}
	if h[8] != float32(math.Ldexp(1, -24)) || h[9] != -float32(math.Ldexp(1, -24)) {
		t.Errorf("f16 smallest subnormals: %v %v", h[8], h[9])
	}
	if math.Float32bits(h[1]) != 0x80000000 {
		t.Errorf("f16 -0: %08x", math.Float32bits(h[1]))
	}
	if s := ck.Tensors["num_batches_tracked"]; len(s.Shape) != 0 || s.DType != tensor.Int64 || len(s.Ints) != 1 || s.Ints[0] != 17 || s.Data != nil {
		t.Errorf("0-d int64: %+v", s)
	}
}

func TestPTViewsDoNotAlias(t *testing.T) {
	ck, err := LoadPT("../fixtures/pt/views.pt")
	if err != nil {
		t.Fatal(err)
	}
	full, tr := ck.Tensors["full"], ck.Tensors["transposed"]
	before := tr.Data[1]
	full.Data[8] = -1 // full[1,0] == transposed[0,1]
	if tr.Data[1] != before {
		t.Error("tensors sharing a storage share memory")
	}
	if s := ck.Tensors["scalar"]; len(s.Shape) != 0 || s.Data[0] != 3.25 {
		t.Errorf("0-d tensor: %+v", s)
	}
	if e := ck.Tensors["empty"]; !slices.Equal(e.Shape, []int{0, 3}) || len(e.Data) != 0 {
		t.Errorf("empty tensor: %+v", e)
	}
}

func TestPTCheckpointDict(t *testing.T) {
	for _, f := range []string{"checkpoint.pt", "checkpoint_legacy.pt"} {
		ck, err := LoadPT("../fixtures/pt/" + f)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"epoch (int)", "val_loss (float)", "np_loss (numpy.float64)", "np_int (numpy.int64)",
			"torch_version (str)", "model_state_dict.x (numpy.ndarray)", "optimizer_state_dict.param_groups (list)",
			"config (dict)", "args (argparse.Namespace)"} {
			if !slices.Contains(ck.Skipped, want) {
				t.Errorf("%s: Skipped lacks %q: %q", f, want, ck.Skipped)
			}
		}
		for _, want := range []string{"numpy.core.multiarray._reconstruct", "numpy.core.multiarray.scalar", "argparse.Namespace"} {
			if !slices.Contains(ck.Ignored, want) {
				t.Errorf("%s: Ignored lacks %q: %q", f, want, ck.Ignored)
			}
		}
		if ck.Metadata["torch_version"] != "1.13.0a0" {
			t.Errorf("%s: Metadata %v", f, ck.Metadata)
		}
	}
}

func TestPTWholeModule(t *testing.T) {
	for _, f := range []string{"whole_module.pt", "whole_module_legacy.pt"} {
		ck, err := LoadPT("../fixtures/pt/" + f)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"__main__.ConvLSTM", "__main__.ConvLSTMCell", "torch.nn.modules.container.ModuleList", "torch.nn.modules.conv.Conv2d"} {
			if !slices.Contains(ck.Ignored, want) {
				t.Errorf("%s: Ignored lacks %q: %q", f, want, ck.Ignored)
			}
		}
		if _, ok := ck.Tensors["scratch"]; ok {
			t.Errorf("%s: non-persistent buffer listed", f)
		}
	}
}

func TestPTTorch2Layout(t *testing.T) {
	ck, err := InspectPT("../fixtures/pt/torch2_bigendian.pt")
	if err != nil {
		t.Fatal(err)
	}
	if ck.Metadata["byteorder"] != "big" || ck.Metadata["storage_alignment"] != "64" {
		t.Errorf("metadata %v", ck.Metadata)
	}
	if ck, err := InspectPT("../fixtures/pt/legacy_bigendian.pt"); err != nil || ck.Metadata["little_endian"] != "false" {
		t.Errorf("legacy big-endian: %v %v", err, ck)
	}
	// The fixture really is aligned: check what the loader relied on.
	zr, err := zip.OpenReader("../fixtures/pt/torch2_zip.pt")
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if strings.Contains(f.Name, "/data/") {
			off, _ := f.DataOffset()
			if off%64 != 0 {
				t.Errorf("%s at %d", f.Name, off)
			}
		}
	}
}

// ---------------------------------------------------------------- real files

type realExpect struct {
	Shape   []int        `json:"shape"`
	Sum     float64      `json:"sum"`
	AbsSum  float64      `json:"abs_sum"`
	Samples [][2]float64 `json:"samples"`
}

func TestPTRealCheckpoints(t *testing.T) {
	for _, c := range []struct {
		file, format string
		tensors      int
	}{
		{"soccer-ball-convlstm.pth", "pytorch-legacy", 6},
		{"moving-mnist-encdec.pt", "pytorch-zip", 8},
	} {
		path := "../fixtures/real/" + c.file
		ck, err := LoadPT(path)
		if err != nil {
			t.Fatal(err)
		}
		if ck.Format != c.format {
			t.Errorf("%s: format %s", c.file, ck.Format)
		}
		raw, err := os.ReadFile(strings.TrimSuffix(strings.TrimSuffix(path, ".pt"), ".pth") + ".expect.json")
		if err != nil {
			t.Fatal(err)
		}
		var exp map[string]realExpect
		if err := json.Unmarshal(raw, &exp); err != nil {
			t.Fatal(err)
		}
		if len(exp) != c.tensors {
			t.Fatalf("%s: %d expectations", c.file, len(exp))
		}
		for name, e := range exp {
			got := ck.Tensors[name]
			if got == nil {
				t.Errorf("%s: no %s", c.file, name)
				continue
			}
			if !slices.Equal(got.Shape, e.Shape) || got.DType != "float32" {
				t.Errorf("%s: %s shape %v %s, want %v", c.file, name, got.Shape, got.DType, e.Shape)
			}
			var sum, abs float64
			for _, v := range got.Data {
				sum += float64(v)
				abs += math.Abs(float64(v))
			}
			if math.Abs(sum-e.Sum) > 1e-9*e.AbsSum+1e-12 || math.Abs(abs-e.AbsSum) > 1e-9*e.AbsSum {
				t.Errorf("%s: %s sums %v %v, want %v %v", c.file, name, sum, abs, e.Sum, e.AbsSum)
			}
			for _, s := range e.Samples {
				if i := int(s[0]); got.Data[i] != float32(s[1]) {
					t.Errorf("%s: %s[%d] = %v, want %v", c.file, name, i, got.Data[i], s[1])
				}
			}
		}
	}
	soccer, err := InspectPT("../fixtures/real/soccer-ball-convlstm.pth")
	if err != nil {
		t.Fatal(err)
	}
	if m := soccer.Metadata; m["storage_locations"] != "cuda:0" || m["pickle_protocol"] != "2" {
		t.Errorf("soccer metadata %v", m)
	}
	if !slices.Contains(soccer.Skipped, "epoch (int)") || !slices.Contains(soccer.Skipped, "optimizer_state_dict.param_groups (list)") {
		t.Errorf("soccer skipped %v", soccer.Skipped)
	}
	ck, err := InspectPT("../fixtures/real/moving-mnist-encdec.pt")
	if err != nil {
		t.Fatal(err)
	}
	if w := ck.Tensors["enc1.conv.weight"]; !slices.Equal(w.Shape, []int{128, 64, 5, 5}) || w.Data != nil {
		t.Errorf("enc1.conv.weight: %v", w.Shape)
	}
	if ck.Metadata["archive_folder"] != "convLSTM_final_weights" {
		t.Errorf("folder %q", ck.Metadata["archive_folder"])
	}
	var ints int
	for _, n := range ck.Names {
		if strings.HasSuffix(n, "num_batches_tracked") {
			ints++
			if tt := ck.Tensors[n]; tt.DType != "int64" || len(tt.Shape) != 0 {
				t.Errorf("%s: %s %v", n, tt.DType, tt.Shape)
			}
		}
	}
	if ints == 0 {
		t.Error("no num_batches_tracked tensors")
	}
}

// ---------------------------------------------------------------- crafted files

// pk writes pickles by hand, for inputs torch would never produce.
type pk struct{ bytes.Buffer }

func newPK() *pk { p := &pk{}; p.WriteString("\x80\x02"); return p }

func (p *pk) op(s string) *pk { p.WriteString(s); return p }

func (p *pk) str(s string) *pk {
	p.WriteByte('X')
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

func (p *pk) int(n int64) *pk {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		p.WriteByte('J')
		binary.Write(&p.Buffer, binary.LittleEndian, int32(n))
		return p
	}
	p.WriteString("\x8a\x08")
	binary.Write(&p.Buffer, binary.LittleEndian, n)
	return p
}

func (p *pk) global(mod, name string) *pk { return p.op("c" + mod + "\n" + name + "\n") }

func (p *pk) ints(xs ...int64) *pk {
	p.op("(")
	for _, x := range xs {
		p.int(x)
	}
	return p.op("t")
}

// tensor pushes _rebuild_tensor_v2 of storage key.
func (p *pk) tensor(storageType, key string, numel, offset int64, shape, stride []int64) *pk {
	p.global("torch._utils", "_rebuild_tensor_v2").op("(")
	p.op("(").str("storage").global("torch", storageType).str(key).str("cpu").int(numel).op("tQ")
	p.int(offset).ints(shape...).ints(stride...).op("\x89").global("collections", "OrderedDict").op(")R")
	return p.op("tR")
}

// stateDict pickles {name: tensor} for one float32 tensor on storage "0".
func stateDict(numel, offset int64, shape, stride []int64) []byte {
	p := newPK().op("}(").str("w")
	p.tensor("FloatStorage", "0", numel, offset, shape, stride)
	return p.op("u.").Bytes()
}

// zipPT packs a torch zip checkpoint in folder "arch".
func zipPT(t testing.TB, pickle []byte, records map[string][]byte, method uint16) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, b []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "arch/" + name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	add("data.pkl", pickle)
	keys := make([]string, 0, len(records))
	for k := range records {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add(k, records[k])
	}
	add("version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func f32bytes(xs ...float32) []byte {
	b := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func wantFormatError(t *testing.T, err error, parts ...string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("want *FormatError, got %T %v", err, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
}

func TestPTCraftedOK(t *testing.T) {
	// Deflated entries are streamed rather than read in place.
	data := zipPT(t, stateDict(6, 1, []int64{2, 2}, []int64{1, 2}), map[string][]byte{"data/0": f32bytes(0, 1, 2, 3, 4, 5)}, zip.Deflate)
	ck, err := LoadPTBytes("deflated.pt", data)
	if err != nil {
		t.Fatal(err)
	}
	if w := ck.Tensors["w"]; !slices.Equal(w.Data, []float32{1, 3, 2, 4}) {
		t.Errorf("strided view of a deflated storage: %v", w.Data)
	}
}

func TestPTCraftedErrors(t *testing.T) {
	rec := func(n int) map[string][]byte { return map[string][]byte{"data/0": make([]byte, n)} }
	cases := []struct {
		name  string
		data  []byte
		parts []string
	}{
		{"short storage", zipPT(t, stateDict(100, 0, []int64{100}, []int64{1}), rec(40), zip.Store),
			[]string{"short storage.pt: data/0: storage has 40 bytes", "tensor w"}},
		{"tensor past storage", zipPT(t, stateDict(4, 0, []int64{10}, []int64{1}), rec(16), zip.Store),
			[]string{"data/0: storage has 16 bytes, tensor w needs 40"}},
		{"offset past storage", zipPT(t, stateDict(4, 4, []int64{1}, []int64{1}), rec(16), zip.Store),
			[]string{"tensor w needs 20"}},
		{"absurd shape", zipPT(t, stateDict(4, 0, []int64{1 << 40, 1 << 40}, []int64{1, 1}), rec(16), zip.Store),
			[]string{"tensor w", "too large"}},
		{"absurd stride", zipPT(t, stateDict(4, 0, []int64{2, 2}, []int64{1 << 52, 1}), rec(16), zip.Store),
			[]string{"tensor w"}},
		{"broadcast bomb", zipPT(t, stateDict(1, 0, []int64{1 << 14, 1 << 14}, []int64{0, 0}), rec(4), zip.Store),
			[]string{"tensor w", "broadcast"}},
		{"missing record", zipPT(t, stateDict(4, 0, []int64{4}, []int64{1}), nil, zip.Store),
			[]string{"data/0", "missing", "tensor w"}},
		{"rank mismatch", zipPT(t, stateDict(4, 0, []int64{4}, []int64{1, 1}), rec(16), zip.Store),
			[]string{"data.pkl", "stride"}},
		{"negative size", zipPT(t, stateDict(4, 0, []int64{-4}, []int64{1}), rec(16), zip.Store),
			[]string{"data.pkl", "size[0]"}},
		{"unhashable key", zipPT(t, newPK().global("collections", "OrderedDict").op(")RC\x01aK\x01s.").Bytes(), nil, zip.Store),
			[]string{"data.pkl", "malformed pickle"}},
		{"huge bytes", zipPT(t, newPK().op("\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.").Bytes(), nil, zip.Store),
			[]string{"data.pkl", "declares"}},
		{"huge unicode", zipPT(t, newPK().op("X\xff\xff\xff\xff.").Bytes(), nil, zip.Store),
			[]string{"data.pkl", "needs 4294967295 bytes"}},
		{"long int", zipPT(t, newPK().op("\x8b\x00\x00\x10\x00"+strings.Repeat("\x01", 1<<20)+".").Bytes(), nil, zip.Store),
			[]string{"data.pkl", "integer"}},
		{"mark bomb", zipPT(t, newPK().op(strings.Repeat("(", 100000)+".").Bytes(), nil, zip.Store),
			[]string{"data.pkl", "nesting"}},
		{"no stop", zipPT(t, newPK().op("}").Bytes(), nil, zip.Store),
			[]string{"data.pkl", "STOP"}},
		{"bad opcode", zipPT(t, newPK().op("\xff.").Bytes(), nil, zip.Store),
			[]string{"data.pkl", "opcode 0xff"}},
		{"deep lists", zipPT(t, newPK().op(strings.Repeat("]", 300)+strings.Repeat("a", 299)+".").Bytes(), nil, zip.Store),
			[]string{"data.pkl", "deeper"}},
		{"unknown persistent id", zipPT(t, newPK().op("(").str("blob").op("tQ.").Bytes(), nil, zip.Store),
			[]string{"data.pkl", "blob"}},
		{"no data.pkl", func() []byte {
			var b bytes.Buffer
			zw := zip.NewWriter(&b)
			w, _ := zw.Create("x/other.bin")
			w.Write([]byte("hi"))
			zw.Close()
			return b.Bytes()
		}(), []string{"data.pkl"}},
		{"empty", nil, []string{"empty.pt", "empty file"}},
		{"random", func() []byte {
			b := make([]byte, 1000)
			rand.New(rand.NewSource(1)).Read(b)
			return b
		}(), []string{"random.pt", "magic number"}},
		{"pickle not torch", newPK().op("K\x01.").Bytes(), []string{"magic number", "not a PyTorch file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadPTBytes(c.name+".pt", c.data)
			wantFormatError(t, err, c.parts...)
		})
	}
}

func TestPTTorch2Forms(t *testing.T) {
	// _rebuild_tensor_v3 over an UntypedStorage with a torch.float32 dtype
	// global, _rebuild_parameter_with_state, _rebuild_from_type_v2, a
	// storage typed by a dtype global, and a storage tagged cuda:1.
	p := newPK().global("collections", "OrderedDict").op(")R(")
	p.str("v3").global("torch._utils", "_rebuild_parameter_with_state").op("(")
	p.global("torch._utils", "_rebuild_tensor_v3").op("(")
	p.op("(").str("storage").global("torch", "UntypedStorage").str("0").str("cuda:1").int(16).op("tQ")
	p.int(1).ints(3).ints(1).op("\x89").global("collections", "OrderedDict").op(")R").global("torch", "float32").op("tR")
	p.op("\x88").global("collections", "OrderedDict").op(")R}tR")
	p.str("sub").global("torch._tensor", "_rebuild_from_type_v2").op("(")
	p.global("torch._utils", "_rebuild_tensor_v2").global("my.pkg", "Buffer").op("(")
	p.op("(").str("storage").global("torch", "float16").str("1").str("cpu").int(2).op("tQ")
	p.int(0).ints(2).ints(1).op("\x89").global("collections", "OrderedDict").op(")R").op("t}tR")
	p.op("u.")
	half := []byte{0x00, 0x3c, 0x00, 0xfc} // 1, -Inf
	ck, err := LoadPTBytes("t2.pt", zipPT(t, p.Bytes(), map[string][]byte{"data/0": f32bytes(9, 1, 2, 3), "data/1": half}, zip.Store))
	if err != nil {
		t.Fatal(err)
	}
	if v := ck.Tensors["v3"]; !slices.Equal(v.Data, []float32{1, 2, 3}) || v.DType != "float32" {
		t.Errorf("v3: %+v", v)
	}
	if v := ck.Tensors["sub"]; v.Data[0] != 1 || !math.IsInf(float64(v.Data[1]), -1) || v.DType != "float16" {
		t.Errorf("sub: %+v", v)
	}
	if ck.Metadata["storage_locations"] != "cuda:1,cpu" || !slices.Equal(ck.Ignored, []string{"my.pkg.Buffer"}) {
		t.Errorf("metadata %v ignored %v", ck.Metadata, ck.Ignored)
	}
}

func TestPTCyclesAndSharing(t *testing.T) {
	// A list that contains itself, and a DAG of 2^60 paths: both finish.
	p := newPK().op("}(").str("loop").op("]q\x00h\x00a").str("dag").op("]")
	for i := 0; i < 60; i++ {
		p.op("q\x010(h\x01h\x01l")
	}
	p.str("w").tensor("FloatStorage", "0", 1, 0, nil, nil).op("u.")
	ck, err := LoadPTBytes("cycles.pt", zipPT(t, p.Bytes(), map[string][]byte{"data/0": f32bytes(7)}, zip.Store))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ck.Names, []string{"w"}) || ck.Tensors["w"].Data[0] != 7 {
		t.Errorf("names %v", ck.Names)
	}
	if !slices.Contains(ck.Skipped, "loop (list)") || !slices.Contains(ck.Skipped, "dag (list)") {
		t.Errorf("skipped %v", ck.Skipped)
	}
}

func TestPTPathExplosion(t *testing.T) {
	// A tensor under 2^40 paths of shared lists: refused, and quickly.
	p := newPK().op("}(").str("x").op("(").tensor("FloatStorage", "0", 1, 0, nil, nil).op("l")
	for i := 0; i < 40; i++ {
		p.op("q\x010(h\x01h\x01l")
	}
	p.op("u.")
	_, err := LoadPTBytes("paths.pt", zipPT(t, p.Bytes(), map[string][]byte{"data/0": f32bytes(7)}, zip.Store))
	wantFormatError(t, err, "paths.pt", "data.pkl")
}

func TestPTTruncated(t *testing.T) {
	for _, f := range []string{"legacy_state_dict.pt", "zip_state_dict.pt", "dtypes_legacy.pt", "torch2_zip.pt"} {
		data, err := os.ReadFile("../fixtures/pt/" + f)
		if err != nil {
			t.Fatal(err)
		}
		step := 1
		if testing.Short() {
			step = 13
		}
		for n := 0; n < len(data); n += step {
			_, err := LoadPTBytes(f, data[:n])
			var fe *FormatError
			if !errors.As(err, &fe) || fe.File != f || fe.Record == "" {
				t.Fatalf("%s cut at %d: %v", f, n, err)
			}
		}
	}
}

func TestPTCorrupted(t *testing.T) {
	// Flipped bytes must give a result or an error, never a panic.
	rng := rand.New(rand.NewSource(7))
	for _, f := range []string{"legacy_state_dict.pt", "whole_module.pt", "checkpoint_legacy.pt"} {
		data, _ := os.ReadFile("../fixtures/pt/" + f)
		for i := 0; i < 300; i++ {
			d := slices.Clone(data)
			for j := 0; j < 1+rng.Intn(4); j++ {
				d[rng.Intn(len(d))] = byte(rng.Intn(256))
			}
			LoadPTBytes(f, d)
		}
	}
}

func TestIsPT(t *testing.T) {
	for _, f := range []string{"../fixtures/pt/views.npz", "pt_test.go"} {
		data, _ := os.ReadFile(f)
		if IsPT(data) {
			t.Errorf("IsPT(%s) = true", f)
		}
	}
	if !IsPT(legacyMagic) {
		t.Error("IsPT false on the legacy magic alone")
	}
	if IsPT(nil) || IsPT([]byte("PK\x03\x04")) {
		t.Error("IsPT on scraps")
	}
}

// TestPTMemory checks that a state_dict loads in about its own size: the
// float32 output plus a bounded read buffer, no copy of the file.
func TestPTMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 32 MB")
	}
	path, size := bigStateDict(t, 8, 1<<20) // 8 tensors of 4 MB
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	ck, err := LoadPT(path)
	runtime.ReadMemStats(&m1)
	if err != nil {
		t.Fatal(err)
	}
	alloc := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("file %d bytes, allocated %d (%.2fx)", size, alloc, float64(alloc)/float64(size))
	if float64(alloc) > 1.3*float64(size) {
		t.Errorf("allocated %d bytes for a %d-byte file", alloc, size)
	}
	if len(ck.Names) != 8 || ck.Tensors["layer7.weight"].Data[5] != 5 {
		t.Error("wrong content")
	}
}

// bigStateDict writes a zip state_dict of n float32 tensors of numel
// elements (values 0, 1, 2, ...).
func bigStateDict(t testing.TB, n int, numel int64) (string, int64) {
	p := newPK().global("collections", "OrderedDict").op(")R(")
	recs := map[string][]byte{}
	vals := make([]float32, numel)
	for i := range vals {
		vals[i] = float32(i)
	}
	raw := f32bytes(vals...)
	for i := 0; i < n; i++ {
		key := fmt.Sprint(i)
		p.str(fmt.Sprintf("layer%d.weight", i)).tensor("FloatStorage", key, numel, 0, []int64{numel / 256, 256}, []int64{256, 1})
		recs["data/"+key] = raw
	}
	data := zipPT(t, p.op("u.").Bytes(), recs, zip.Store)
	path := filepath.Join(t.TempDir(), "big.pt")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, int64(len(data))
}

func BenchmarkLoadPT100MB(b *testing.B) {
	path, size := bigStateDict(b, 25, 1<<20)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := LoadPT(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadPTFile loads the file CONVLSTM_LOAD_FILE names (skipped
// without it); scripts/bench_load.py uses it to time LoadPT against
// torch.load on the same file.
func BenchmarkLoadPTFile(b *testing.B) {
	path := os.Getenv("CONVLSTM_LOAD_FILE")
	if path == "" {
		b.Skip("set CONVLSTM_LOAD_FILE to a .pt file")
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := LoadPT(path); err != nil {
			b.Fatal(err)
		}
	}
}
