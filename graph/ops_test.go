package graph

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// opGraph builds a one-node model: input "x" (float, shape given), extra
// int64 constant inputs, one output "y".
func opGraph(t *testing.T, opset int64, op string, xshape []int64, consts map[string][]int64, inputs []string, attrs ...*onnxpb.AttributeProto) (*Graph, error) {
	t.Helper()
	var inits []*onnxpb.TensorProto
	for name, v := range consts {
		inits = append(inits, &onnxpb.TensorProto{Name: proto.String(name), Dims: []int64{int64(len(v))}, DataType: proto.Int32(7), Int64Data: v})
	}
	dims := make([]*onnxpb.TensorShapeProto_Dimension, len(xshape))
	for i, d := range xshape {
		dims[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}}
	}
	vi := func(name string, d []*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1), Shape: &onnxpb.TensorShapeProto{Dim: d}}}}}
	}
	mp := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(opset)}},
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("t"),
			Node:        []*onnxpb.NodeProto{{OpType: proto.String(op), Name: proto.String("n"), Input: inputs, Output: []string{"y"}, Attribute: attrs}},
			Initializer: inits,
			Input:       []*onnxpb.ValueInfoProto{vi("x", dims)},
			Output:      []*onnxpb.ValueInfoProto{vi("y", nil)},
		},
	}
	b, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := loader.ParseONNX("op.onnx", b, "")
	if err != nil {
		t.Fatal(err)
	}
	// The input's shape is static, so Compile already runs the shape pass.
	return Compile(m, Options{Threads: 1})
}

func ints(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func ramp(shape ...int) *tensor.Tensor {
	t := &tensor.Tensor{Shape: shape, Data: make([]float32, numel(shape))}
	for i := range t.Data {
		t.Data[i] = float32(i)
	}
	return t
}

func TestOps(t *testing.T) {
	cases := []struct {
		name      string
		opset     int64
		op        string
		x         []int64
		consts    map[string][]int64
		in        []string
		attrs     []*onnxpb.AttributeProto
		wantShape []int
		want      []float32 // nil: check the shape only
	}{
		// x = 0..5 as (2, 3).
		{"transpose", 13, "Transpose", []int64{2, 3}, nil, []string{"x"}, []*onnxpb.AttributeProto{ints("perm", 1, 0)}, []int{3, 2}, []float32{0, 3, 1, 4, 2, 5}},
		{"transpose default", 13, "Transpose", []int64{2, 3}, nil, []string{"x"}, nil, []int{3, 2}, []float32{0, 3, 1, 4, 2, 5}},
		{"slice", 13, "Slice", []int64{2, 3}, map[string][]int64{"s": {1}, "e": {100}, "a": {1}}, []string{"x", "s", "e", "a"}, nil, []int{2, 2}, []float32{1, 2, 4, 5}},
		{"slice negative step", 13, "Slice", []int64{2, 3}, map[string][]int64{"s": {-1}, "e": {-100}, "a": {1}, "st": {-2}}, []string{"x", "s", "e", "a", "st"}, nil, []int{2, 2}, []float32{2, 0, 5, 3}},
		{"slice opset 9 attrs", 9, "Slice", []int64{2, 3}, nil, []string{"x"}, []*onnxpb.AttributeProto{ints("starts", 1), ints("ends", 2), ints("axes", 0)}, []int{1, 3}, []float32{3, 4, 5}},
		{"reshape -1 and 0", 13, "Reshape", []int64{2, 3}, map[string][]int64{"s": {0, -1, 1}}, []string{"x", "s"}, nil, []int{2, 3, 1}, []float32{0, 1, 2, 3, 4, 5}},
		{"gather axis 1", 13, "Gather", []int64{2, 3}, map[string][]int64{"i": {2, -3}}, []string{"x", "i"}, []*onnxpb.AttributeProto{{Name: proto.String("axis"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)}}, []int{2, 2}, []float32{2, 0, 5, 3}},
		{"unsqueeze opset 11", 11, "Unsqueeze", []int64{2, 3}, nil, []string{"x"}, []*onnxpb.AttributeProto{ints("axes", 0, -1)}, []int{1, 2, 3, 1}, []float32{0, 1, 2, 3, 4, 5}},
		{"unsqueeze opset 13", 13, "Unsqueeze", []int64{2, 3}, map[string][]int64{"a": {1}}, []string{"x", "a"}, nil, []int{2, 1, 3}, nil},
		{"squeeze all", 13, "Squeeze", []int64{1, 3, 1}, nil, []string{"x"}, nil, []int{3}, []float32{0, 1, 2}},
		{"squeeze opset 11", 11, "Squeeze", []int64{1, 3, 1}, nil, []string{"x"}, []*onnxpb.AttributeProto{ints("axes", 2)}, []int{1, 3}, nil},
		{"relu", 13, "Relu", []int64{3}, nil, []string{"x"}, nil, []int{3}, []float32{0, 1, 2}},
		{"split opset 11 attr", 11, "Split", []int64{2, 3}, nil, []string{"x"}, []*onnxpb.AttributeProto{ints("split", 1, 2), {Name: proto.String("axis"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)}}, []int{2, 1}, []float32{0, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shape := make([]int, len(c.x))
			for i, d := range c.x {
				shape[i] = int(d)
			}
			var g *Graph
			if c.op == "Split" {
				// Two outputs, so that the sizes 1+2 match.
				g = splitGraph(t, c.opset, c.attrs)
			} else {
				var err error
				if g, err = opGraph(t, c.opset, c.op, c.x, c.consts, c.in, c.attrs...); err != nil {
					t.Fatal(err)
				}
			}
			out, err := g.Run(map[string]*tensor.Tensor{"x": ramp(shape...)})
			if err != nil {
				t.Fatal(err)
			}
			y := out["y"]
			if !slices.Equal(y.Shape, c.wantShape) || (c.want != nil && !slices.Equal(y.Data, c.want)) {
				t.Errorf("got %v %v, want %v %v", y.Shape, y.Data, c.wantShape, c.want)
			}
		})
	}
}

func splitGraph(t *testing.T, opset int64, attrs []*onnxpb.AttributeProto) *Graph {
	t.Helper()
	vi := func(name string) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1)}}}}
	}
	mp := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(opset)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String("t"),
			Node:   []*onnxpb.NodeProto{{OpType: proto.String("Split"), Name: proto.String("n"), Input: []string{"x"}, Output: []string{"y", "z"}, Attribute: attrs}},
			Input:  []*onnxpb.ValueInfoProto{vi("x")},
			Output: []*onnxpb.ValueInfoProto{vi("y"), vi("z")},
		},
	}
	b, _ := proto.Marshal(mp)
	m, err := loader.ParseONNX("split.onnx", b, "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := Compile(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestOpErrors: malformed attributes are reported with the node, before
// any data is computed: by Compile, since these graphs have static shapes.
func TestOpErrors(t *testing.T) {
	for _, c := range []struct {
		op     string
		consts map[string][]int64
		in     []string
		attrs  []*onnxpb.AttributeProto
		want   string
	}{
		{"Transpose", nil, []string{"x"}, []*onnxpb.AttributeProto{ints("perm", 0, 0)}, "not a permutation"},
		{"Reshape", map[string][]int64{"s": {-1, -1}}, []string{"x", "s"}, nil, "more than one -1"},
		{"Reshape", map[string][]int64{"s": {4}}, []string{"x", "s"}, nil, "cannot reshape"},
		{"Gather", map[string][]int64{"i": {7}}, []string{"x", "i"}, nil, "out of range"},
		{"Slice", map[string][]int64{"s": {0}, "e": {1}, "a": {0}, "st": {0}}, []string{"x", "s", "e", "a", "st"}, nil, "step 0"},
		{"Squeeze", nil, []string{"x"}, []*onnxpb.AttributeProto{ints("axes", 1)}, "cannot squeeze"},
	} {
		opset := int64(11)
		if c.op == "Slice" || c.op == "Reshape" || c.op == "Gather" {
			opset = 13
		}
		_, err := opGraph(t, opset, c.op, []int64{2, 3}, c.consts, c.in, c.attrs...)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprintf(`node "n" (%s)`, c.op)) {
			t.Errorf("%s: %v, want %q", c.op, err, c.want)
		}
	}
}

func TestBroadcast(t *testing.T) {
	x := &exec{g: &Graph{}, owned: map[*float32]*ownedBuf{}}
	n := &node{name: "n", op: "Sub", in: []string{"a", "b"}}
	a := tensor.FromFloats([]float32{0, 1, 2, 3, 4, 5}, 2, 1, 3)
	b := tensor.FromFloats([]float32{10, 20}, 2, 1)
	y, err := runArith(x, n, []*tensor.Tensor{a, b})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{-10, -9, -8, -20, -19, -18, -7, -6, -5, -17, -16, -15}
	if !slices.Equal(y[0].Shape, []int{2, 2, 3}) || !slices.Equal(y[0].Data, want) {
		t.Errorf("got %v %v, want (2, 2, 3) %v", y[0].Shape, y[0].Data, want)
	}
	if _, err := runArith(x, n, []*tensor.Tensor{a, tensor.New(4)}); err == nil || !strings.Contains(err.Error(), "do not broadcast") {
		t.Errorf("incompatible shapes: %v", err)
	}
	if _, err := runArith(x, n, []*tensor.Tensor{a, tensor.FromInts(tensor.Int64, []int64{1}, 1)}); err == nil || !strings.Contains(err.Error(), "element types") {
		t.Errorf("mixed types: %v", err)
	}
}
