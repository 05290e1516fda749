package convlstm

import (
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// weight makes a tensor of the given shape with data.
func weight(shape ...int) *tensor.Tensor {
	t := &tensor.Tensor{Shape: shape, DType: "float32"}
	t.Data = make([]float32, t.NumElements())
	return t
}

type entry struct {
	name string
	t    *tensor.Tensor
}

func tensors(es ...entry) ([]string, map[string]*tensor.Tensor) {
	var names []string
	ts := map[string]*tensor.Tensor{}
	for _, e := range es {
		names = append(names, e.name)
		ts[e.name] = e.t
	}
	return names, ts
}

func TestFromTensorsFinds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		opts    Options
		prefix  string
		kind    string
		layers  []LayerConfig
	}{
		{"bare stack", []entry{
			{"cell_list.0.conv.weight", weight(16, 7, 3, 3)}, {"cell_list.0.conv.bias", weight(16)},
			{"cell_list.1.conv.weight", weight(8, 6, 5, 3)},
		}, Options{}, "", "cell_list", []LayerConfig{{3, 4, 3, 3, true}, {4, 2, 5, 3, false}}},
		{"checkpoint with other layers", []entry{
			{"model_state_dict.seq1.0.weight", weight(8, 3, 3, 3)},
			{"model_state_dict.conv_lstm.cell_list.0.conv.weight", weight(128, 33, 3, 3)},
			{"model_state_dict.conv_lstm.cell_list.0.conv.bias", weight(128)},
			{"optimizer_state_dict.state.1.exp_avg", weight(128, 33, 3, 3)},
		}, Options{}, "model_state_dict.conv_lstm", "cell_list", []LayerConfig{{1, 32, 3, 3, true}}},
		{"single cell", []entry{{"cell.conv.weight", weight(12, 5, 1, 1)}, {"cell.conv.bias", weight(12)}},
			Options{}, "cell", "cell", []LayerConfig{{2, 3, 1, 1, true}}},
		{"chosen cell", []entry{
			{"enc1.conv.weight", weight(128, 64, 5, 5)}, {"enc2.conv.weight", weight(16, 36, 3, 3)},
			{"conv1.weight", weight(32, 1, 3, 3)},
		}, Options{Prefix: "enc2."}, "enc2", "cell", []LayerConfig{{32, 4, 3, 3, false}}},
		{"parent prefix with one ConvLSTM below", []entry{
			{"model.net.cell_list.0.conv.weight", weight(8, 3, 3, 3)},
		}, Options{Prefix: "model"}, "model.net", "cell_list", []LayerConfig{{1, 2, 3, 3, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names, ts := tensors(tc.entries...)
			m, err := FromTensors("f.pt", names, ts, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if m.Source.Prefix != tc.prefix || m.Source.Kind != tc.kind {
				t.Errorf("found %q (%s), want %q (%s)", m.Source.Prefix, m.Source.Kind, tc.prefix, tc.kind)
			}
			got := m.Config()
			if len(got) != len(tc.layers) {
				t.Fatalf("%d layers, want %d", len(got), len(tc.layers))
			}
			for i := range got {
				if got[i] != tc.layers[i] {
					t.Errorf("layer %d: %+v, want %+v", i, got[i], tc.layers[i])
				}
			}
		})
	}
}

func TestFromTensorsErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		opts    Options
		want    []string
	}{
		{"nothing", []entry{{"fc.weight", weight(3, 4)}}, Options{}, []string{"no ConvLSTM", "fc.weight"}},
		{"missing layer", []entry{
			{"cell_list.0.conv.weight", weight(16, 7, 3, 3)}, {"cell_list.2.conv.weight", weight(16, 8, 3, 3)},
		}, Options{}, []string{"layer 1 is missing", "0, 2"}},
		{"widths do not chain", []entry{
			{"cell_list.0.conv.weight", weight(16, 7, 3, 3)}, {"cell_list.1.conv.weight", weight(16, 9, 3, 3)},
		}, Options{}, []string{"layer 1 takes 5 input channels", "layer 0 produces 4"}},
		{"rows not multiple of 4", []entry{{"cell_list.0.conv.weight", weight(10, 7, 3, 3)}}, Options{}, []string{"10 output channels", "multiple of 4"}},
		{"even kernel", []entry{{"cell_list.0.conv.weight", weight(16, 7, 4, 4)}}, Options{}, []string{"4×4", "even", "k//2"}},
		{"not 4-D", []entry{{"cell_list.0.conv.weight", weight(16, 7, 3)}}, Options{}, []string{"(16, 7, 3)", "4 dimensions"}},
		{"bias shape", []entry{{"cell_list.0.conv.weight", weight(16, 7, 3, 3)}, {"cell_list.0.conv.bias", weight(15)}}, Options{}, []string{"cell_list.0.conv.bias", "(16,)"}},
		{"no input channels", []entry{{"cell_list.0.conv.weight", weight(16, 4, 3, 3)}}, Options{}, []string{"4 input channels", "more than 4"}},
		{"ambiguous", []entry{
			{"enc1.conv.weight", weight(16, 8, 3, 3)}, {"dec1.conv.weight", weight(16, 8, 3, 3)},
		}, Options{}, []string{"several", "enc1", "dec1", "--prefix"}},
		{"two stacks", []entry{
			{"a.cell_list.0.conv.weight", weight(16, 8, 3, 3)}, {"b.cell_list.0.conv.weight", weight(16, 8, 3, 3)},
		}, Options{}, []string{"several", "a (ConvLSTM cell_list)", "b (ConvLSTM cell_list)"}},
		{"unknown prefix", []entry{{"enc1.conv.weight", weight(16, 8, 3, 3)}}, Options{Prefix: "dec9"}, []string{"dec9", "enc1"}},
		{"bad gates", []entry{{"enc1.conv.weight", weight(16, 8, 3, 3)}}, Options{Gates: "ifoo"}, []string{"ifoo"}},
		{"short data", []entry{{"cell_list.0.conv.weight", &tensor.Tensor{Shape: []int{16, 7, 3, 3}, Data: make([]float32, 5)}}}, Options{}, []string{"5 values"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names, ts := tensors(tc.entries...)
			_, err := FromTensors("f.pt", names, ts, tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseGateOrder(t *testing.T) {
	for _, s := range []string{"ifog", "FIOG", "ifgo", "gofi"} {
		if _, err := ParseGateOrder(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"ifo", "iffo", "ifogx", "abcd"} {
		if _, err := ParseGateOrder(s); err == nil {
			t.Errorf("%s: accepted", s)
		}
	}
}

// FindAllTensors describes every ConvLSTM in a file, each as FromTensors
// would read it with its prefix; one that cannot run says why, the others
// are still described.
func TestFindAllTensors(t *testing.T) {
	names, ts := tensors(
		entry{"enc1.conv.weight", weight(16, 8, 3, 3)}, entry{"enc1.conv.bias", weight(16)},
		entry{"enc2.conv.weight", weight(16, 8, 4, 4)}, // even kernel: cannot run
		entry{"dec1.conv.weight", weight(8, 6, 5, 5)},
		entry{"conv1.weight", weight(32, 1, 3, 3)},
	)
	found := FindAllTensors("f.pt", names, ts, Options{Gates: "fiog"})
	if len(found) != 3 {
		t.Fatalf("%d found, want enc1, enc2, dec1: %+v", len(found), found)
	}
	for i, want := range []string{"enc1", "enc2", "dec1"} {
		if found[i].Prefix != want || found[i].Kind != "cell" {
			t.Errorf("found[%d] = %q (%s), want %s (cell)", i, found[i].Prefix, found[i].Kind, want)
		}
	}
	if m := found[0].Model; m == nil || m.Gates != "fiog" || m.Layers[0].HiddenDim != 4 || !m.Layers[0].HasBias {
		t.Errorf("enc1: %+v, %v", m, found[0].Err)
	}
	if found[1].Model != nil || found[1].Err == nil || !strings.Contains(found[1].Err.Error(), "even") {
		t.Errorf("enc2: model %v, error %v; want an even-kernel error", found[1].Model, found[1].Err)
	}
	if m := found[2].Model; m == nil || m.Layers[0].InputDim != 4 || m.Layers[0].HiddenDim != 2 {
		t.Errorf("dec1: %+v, %v", m, found[2].Err)
	}
	if f := FindAllTensors("f.pt", names, ts, Options{Prefix: "dec1"}); len(f) != 1 || f[0].Model == nil || f[0].Prefix != "dec1" {
		t.Errorf("with a prefix: %+v", f)
	}
	if f := FindAllTensors("f.pt", names, ts, Options{Gates: "ifoo"}); len(f) != 3 || f[0].Err == nil {
		t.Errorf("a bad gate order: %+v", f)
	}
}

// The architecture a file records (package export writes it) must agree
// with its weights; the gate order it records is used.
func TestMetadata(t *testing.T) {
	names, ts := tensors(entry{"cell_list.0.conv.weight", weight(16, 7, 3, 3)}, entry{"cell_list.0.conv.bias", weight(16)})
	m, err := FromTensors("f", names, ts, Options{Gates: "ifgo"})
	if err != nil {
		t.Fatal(err)
	}
	meta := m.Metadata()
	if meta[MetaGates] != "ifgo" || meta[MetaConfig] != `[{"input_dim":3,"hidden_dim":4,"kernel_h":3,"kernel_w":3,"bias":true}]` {
		t.Fatalf("metadata %v", meta)
	}
	ck := &loader.Checkpoint{File: "f.safetensors", Names: names, Tensors: ts, Metadata: meta}
	if m2, err := FromCheckpoint(ck, Options{}); err != nil || m2.Gates != "ifgo" {
		t.Errorf("gates from metadata: %v, %v", m2, err)
	}
	ck.Metadata = map[string]string{MetaConfig: `[{"input_dim":3,"hidden_dim":4,"kernel_h":5,"kernel_w":5,"bias":true}]`}
	if _, err := FromCheckpoint(ck, Options{}); err == nil || !strings.Contains(err.Error(), "layer 0") || !strings.Contains(err.Error(), "f.safetensors") {
		t.Errorf("contradicting metadata: %v", err)
	}
	ck.Metadata = map[string]string{MetaConfig: `not json`}
	if _, err := FromCheckpoint(ck, Options{}); err == nil || !strings.Contains(err.Error(), MetaConfig) {
		t.Errorf("broken metadata: %v", err)
	}
}
