package export

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/runtime"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// fixtureModel rebuilds the ConvLSTM inside a torch-exported fixture from
// its initialisers (torch keeps the state_dict names).
func fixtureModel(t *testing.T, name, gates string) *convlstm.Model {
	t.Helper()
	om, err := loader.LoadONNX(filepath.Join("..", "fixtures", "onnx", name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	ts := map[string]*tensor.Tensor{}
	var names []string
	for _, in := range om.Initializers {
		if in.IsFloat() {
			ts[in.Name] = in.Tensor
			names = append(names, in.Name)
		}
	}
	m, err := convlstm.FromTensors(om.File, names, ts, convlstm.Options{Gates: gates})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestONNXRoundTrip exports the fixtures' weights as our Scan graph, runs it
// with package graph on the fixture input and compares with PyTorch's output
// of the same module.
func TestONNXRoundTrip(t *testing.T) {
	for _, c := range []struct{ name, gates string }{
		{"dynamic_op11", "ifog"}, {"dynamic_op17", "ifog"}, {"fiog_nobias_op13", "fiog"}, {"static_op13", "ifog"},
	} {
		for _, opset := range []int64{11, 13, 17} {
			m := fixtureModel(t, c.name, c.gates)
			var buf bytes.Buffer
			if err := ONNX(m, &buf, ONNXOptions{Opset: opset}); err != nil {
				t.Fatal(err)
			}
			om, err := loader.ParseONNX(c.name+".export.onnx", buf.Bytes(), "")
			if err != nil {
				t.Fatal(err)
			}
			g, err := graph.Compile(om, graph.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join("..", "fixtures", "onnx", c.name)
			x := readNPYTest(t, base+".input.npy")
			ref := readNPZTest(t, base+".ref.npz")
			out, err := g.Run(map[string]*tensor.Tensor{"input": x})
			if err != nil {
				t.Fatalf("%s opset %d: %v", c.name, opset, err)
			}
			for k, r := range ref {
				o := out[k]
				if o == nil || !slices.Equal(o.Shape, r.Shape) {
					t.Fatalf("%s: output %s missing or shape differs from %v", c.name, k, r.Shape)
				}
				worst := 0.0
				for i := range r.Data {
					d := math.Abs(float64(o.Data[i] - r.Data[i]))
					worst = max(worst, d)
					if d > 1e-5+1e-5*math.Abs(float64(r.Data[i])) {
						t.Fatalf("%s opset %d %s[%d] = %v, PyTorch %v", c.name, opset, k, i, o.Data[i], r.Data[i])
					}
				}
				if opset == 17 {
					t.Logf("%s %s: worst |go-ref| = %.3g", c.name, k, worst)
				}
			}
		}
	}
}

func TestONNXInitialStateInputs(t *testing.T) {
	m := fixtureModel(t, "dynamic_op13", "ifog")
	var buf bytes.Buffer
	if err := ONNX(m, &buf, ONNXOptions{InitialState: true}); err != nil {
		t.Fatal(err)
	}
	om, err := loader.ParseONNX("init.onnx", buf.Bytes(), "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Compile(om, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range g.Inputs() {
		names = append(names, in.Name+"["+strings.Join(in.Dims, ",")+"]")
	}
	want := []string{"input[batch,time,2,height,width]", "h0_0[batch,3,height,width]", "c0_0[batch,3,height,width]", "h0_1[batch,2,height,width]", "c0_1[batch,2,height,width]"}
	if !slices.Equal(names, want) {
		t.Fatalf("inputs %v, want %v", names, want)
	}
	// Zero initial states must equal the graph without state inputs; a
	// state carried across a split sequence must equal one pass.
	x := readNPYTest(t, filepath.Join("..", "fixtures", "onnx", "dynamic_op13.input.npy"))
	ref := readNPZTest(t, filepath.Join("..", "fixtures", "onnx", "dynamic_op13.ref.npz"))
	B, T, H, W := x.Shape[0], x.Shape[1], x.Shape[3], x.Shape[4]
	in := map[string]*tensor.Tensor{}
	for l, hid := range []int{3, 2} {
		for _, p := range []string{"h0_", "c0_"} {
			in[p+string(rune('0'+l))] = &tensor.Tensor{Shape: []int{B, hid, H, W}, Data: make([]float32, B*hid*H*W)}
		}
	}
	first := &tensor.Tensor{Shape: []int{B, 2, 2, H, W}}
	second := &tensor.Tensor{Shape: []int{B, T - 2, 2, H, W}}
	step := 2 * H * W
	for b := 0; b < B; b++ {
		first.Data = append(first.Data, x.Data[b*T*step:(b*T+2)*step]...)
		second.Data = append(second.Data, x.Data[(b*T+2)*step:(b+1)*T*step]...)
	}
	in["input"] = first
	o1, err := g.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	in2 := map[string]*tensor.Tensor{"input": second}
	for l := 0; l < 2; l++ {
		s := string(rune('0' + l))
		in2["h0_"+s], in2["c0_"+s] = o1["h_"+s], o1["c_"+s]
	}
	o2, err := g.Run(in2)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"h_0", "c_0", "h_1", "c_1"} {
		for i, v := range ref[k].Data {
			if d := math.Abs(float64(o2[k].Data[i] - v)); d > 1e-5+1e-5*math.Abs(float64(v)) {
				t.Fatalf("%s[%d] after a split run = %v, PyTorch %v", k, i, o2[k].Data[i], v)
			}
		}
	}
}

// TestSafetensorsRoundTrip: a PyTorch .pt (gate order ifgo) converted to
// safetensors and read back runs, with the gate order taken from the
// file's metadata, to PyTorch's numbers; so do the F16/BF16/F64 files
// PyTorch-side code wrote.
func TestSafetensorsRoundTrip(t *testing.T) {
	dir := filepath.Join("..", "fixtures", "safetensors")
	pt, err := loader.LoadPT(filepath.Join(dir, "model.pt"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := convlstm.FromTensors(pt.File, pt.Names, pt.Tensors, convlstm.Options{Gates: "ifgo"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Safetensors(m, &buf, SafetensorsOptions{}); err != nil {
		t.Fatal(err)
	}
	x := readNPYTest(t, filepath.Join(dir, "input.npy"))
	check := func(label string, data []byte, refName string) {
		ck, err := loader.LoadSafetensorsBytes(label, data)
		if err != nil {
			t.Fatal(err)
		}
		if ck.Metadata[convlstm.MetaGates] != "ifgo" {
			t.Fatalf("%s: metadata %v", label, ck.Metadata)
		}
		m2, err := convlstm.FromTensors(ck.File, ck.Names, ck.Tensors, convlstm.Options{Gates: ck.Metadata[convlstm.MetaGates]})
		if err != nil {
			t.Fatal(err)
		}
		r, err := runtime.New(m2, runtime.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		res, err := r.Forward(x, runtime.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*tensor.Tensor{"output": res.Output}
		for l, s := range res.Final {
			got[fmt.Sprintf("h_%d", l)], got[fmt.Sprintf("c_%d", l)] = s.H, s.C
		}
		worst := 0.0
		for k, ref := range readNPZTest(t, filepath.Join(dir, refName)) {
			g := got[k]
			if g == nil || !slices.Equal(g.Shape, ref.Shape) {
				t.Fatalf("%s: %s missing or of the wrong shape", label, k)
			}
			for i, v := range ref.Data {
				d := math.Abs(float64(g.Data[i] - v))
				worst = max(worst, d)
				if d > 1e-5+1e-5*math.Abs(float64(v)) {
					t.Fatalf("%s: %s[%d] = %v, PyTorch %v", label, k, i, g.Data[i], v)
				}
			}
		}
		t.Logf("%s: worst |go-ref| = %.3g", label, worst)
	}
	check("converted.safetensors", buf.Bytes(), "ref.npz")
	for _, tag := range []string{"f32", "f16", "bf16", "f64"} {
		data, err := os.ReadFile(filepath.Join(dir, "model_"+tag+".safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		check("model_"+tag+".safetensors", data, "ref_"+tag+".npz")
	}
}
