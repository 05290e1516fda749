package graph

import (
	"github.com/convlstm-go/convlstm-go/tensor"

	"errors"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
)

// mutate loads a fixture's ModelProto, lets f change it and compiles it.
func mutate(t *testing.T, f func(mp *onnxpb.ModelProto)) (*Graph, error) {
	t.Helper()
	b, err := os.ReadFile("../fixtures/onnx/dynamic_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, mp); err != nil {
		t.Fatal(err)
	}
	f(mp)
	b, _ = proto.Marshal(mp)
	m, err := loader.ParseONNX("mut.onnx", b, "")
	if err != nil {
		return nil, err
	}
	return Compile(m, Options{Threads: 1})
}

func findNode(mp *onnxpb.ModelProto, op string) *onnxpb.NodeProto {
	for _, n := range mp.Graph.Node {
		if n.GetOpType() == op {
			return n
		}
	}
	return nil
}

func run(g *Graph, shape ...int) error {
	n := 1
	for _, d := range shape {
		n *= d
	}
	_, err := g.Run(map[string]*tensor.Tensor{"input": {Shape: shape, Data: make([]float32, n)}})
	return err
}

func TestGraphErrors(t *testing.T) {
	// An unsupported op is named with its node.
	_, err := mutate(t, func(mp *onnxpb.ModelProto) {
		n := findNode(mp, "Tanh")
		n.OpType = proto.String("NonMaxSuppression")
		n.Name = proto.String("my_node")
	})
	if err == nil || !strings.Contains(err.Error(), `node "my_node" (NonMaxSuppression): operator NonMaxSuppression is not supported`) {
		t.Errorf("unsupported op: %v", err)
	}
	// Conv with stride 2 is refused at load, naming the node.
	_, err = mutate(t, func(mp *onnxpb.ModelProto) {
		n := findNode(mp, "Conv")
		for _, a := range n.Attribute {
			if a.GetName() == "strides" {
				a.Ints = []int64{2, 2}
			}
		}
	})
	if err == nil || !strings.Contains(err.Error(), "strides=[2 2]") {
		t.Errorf("stride: %v", err)
	}
	// A dangling input.
	_, err = mutate(t, func(mp *onnxpb.ModelProto) { findNode(mp, "Mul").Input[0] = "nowhere" })
	if err == nil || !strings.Contains(err.Error(), `input "nowhere" is not produced`) {
		t.Errorf("dangling: %v", err)
	}
	g, err := mutate(t, func(*onnxpb.ModelProto) {})
	if err != nil {
		t.Fatal(err)
	}
	// Wrong channel count, wrong rank, fixed dimension T.
	for _, c := range []struct {
		shape []int
		want  string
	}{
		{[]int{1, 3, 5, 4, 4}, "dimension 2 must be 2"},
		{[]int{1, 3, 2, 4}, "rank 5"},
		{[]int{1, 4, 2, 4, 4}, "dimension 1 must be 3"},
	} {
		if err := run(g, c.shape...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("input %v: %v, want %q", c.shape, err, c.want)
		}
	}
	if err := run(g, 2, 3, 2, 1, 9); err != nil {
		t.Errorf("valid dynamic sizes: %v", err)
	}
	// A Split whose sizes do not add up fails in the dry pass, naming the node.
	g, err = mutate(t, func(mp *onnxpb.ModelProto) {
		s := findNode(mp, "Split")
		s.Name = proto.String("bad_split")
		for _, in := range mp.Graph.Node {
			if in.GetOpType() == "Constant" && len(in.Output) == 1 && in.Output[0] == s.Input[1] {
				in.Attribute[0].T.RawData = in.Attribute[0].T.RawData[:len(in.Attribute[0].T.RawData)-8]
				in.Attribute[0].T.Dims = []int64{3}
			}
		}
	})
	if err == nil {
		err = run(g, 1, 3, 2, 4, 4)
	}
	var ge *Error
	if err == nil || !errors.As(err, &ge) || !strings.Contains(err.Error(), "bad_split") {
		t.Errorf("bad split: %v", err)
	}
}

// FuzzGraph: compiling and running a mutated model never panics.
func FuzzGraph(f *testing.F) {
	for _, p := range []string{"../fixtures/onnx/dynamic_op11.onnx", "../fixtures/onnx/static_op17.onnx"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Keep a mutated ConstantOfShape from allocating gigabytes; restored
	// for the tests that run after.
	saved := maxValues
	maxValues = 1 << 20
	f.Cleanup(func() { maxValues = saved })
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := loader.ParseONNX("fuzz.onnx", data, "")
		if err != nil {
			return
		}
		g, err := Compile(m, Options{Threads: 1})
		if err != nil || len(g.Inputs()) != 1 {
			return
		}
		in := g.Inputs()[0]
		shape := make([]int, len(in.Dims))
		n := 1
		for i := range shape {
			shape[i] = 2
			if i < len(in.fixed) && in.fixed[i] > 0 && in.fixed[i] < 8 {
				shape[i] = in.fixed[i]
			}
			n *= shape[i]
		}
		_, err = g.Run(map[string]*tensor.Tensor{in.Name: {Shape: shape, Data: make([]float32, n)}})
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("a check is missing: %v", err)
		}
	})
}

// TestStaticShapeErrorAtLoad: in a static graph a shape error is found by
// Compile, before any run.
func TestStaticShapeErrorAtLoad(t *testing.T) {
	b, err := os.ReadFile("../fixtures/onnx/static_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, mp); err != nil {
		t.Fatal(err)
	}
	// Declare 3 input channels where the weights want 2.
	mp.Graph.Input[0].Type.GetTensorType().Shape.Dim[2].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 3}
	b, _ = proto.Marshal(mp)
	m, err := loader.ParseONNX("static.onnx", b, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(m, Options{}); err == nil || !strings.Contains(err.Error(), "channels") {
		t.Errorf("Compile: %v, want a channel mismatch", err)
	}
}
