package graph

import (
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Helpers that build small ONNX models in memory, for the op tests and the
// fuzz seeds.

var onnxCodes = map[tensor.DType]int32{tensor.Float32: 1, tensor.Int32: 6, tensor.Int64: 7, tensor.Bool: 9}

func dtypeOf(t *tensor.Tensor) tensor.DType {
	if t.DType == "" {
		return tensor.Float32
	}
	return t.DType
}

// tensorProto encodes t under name.
func tensorProto(name string, t *tensor.Tensor) *onnxpb.TensorProto {
	tp := &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(onnxCodes[dtypeOf(t)])}
	for _, d := range t.Shape {
		tp.Dims = append(tp.Dims, int64(d))
	}
	switch dtypeOf(t) {
	case tensor.Float32:
		tp.FloatData = append([]float32{}, t.Data...)
	case tensor.Int64:
		tp.Int64Data = append([]int64{}, t.Ints...)
	default:
		for _, v := range t.Ints {
			tp.Int32Data = append(tp.Int32Data, int32(v))
		}
	}
	return tp
}

// valueProto declares a tensor value; shape nil leaves the rank unknown.
func valueProto(name string, dt tensor.DType, shape []int) *onnxpb.ValueInfoProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(onnxCodes[dt])}
	if shape != nil {
		tt.Shape = &onnxpb.TensorShapeProto{}
		for _, d := range shape {
			tt.Shape.Dim = append(tt.Shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}}
}

func nodeProto(op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(out[0]), Input: in, Output: out, Attribute: attrs}
}

func attrI(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrIs(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func attrF(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

func attrS(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

func attrG(name string, g *onnxpb.GraphProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: g}
}

// graphProto is a graph of nodes reading the feeds (as inputs) and the
// consts (as initializers), with the given outputs (untyped rank).
func graphProto(nodes []*onnxpb.NodeProto, feeds, consts map[string]*tensor.Tensor, outputs ...string) *onnxpb.GraphProto {
	g := &onnxpb.GraphProto{Name: proto.String("g"), Node: nodes}
	for _, name := range sortedKeys(feeds) {
		g.Input = append(g.Input, valueProto(name, dtypeOf(feeds[name]), feeds[name].Shape))
	}
	for _, name := range sortedKeys(consts) {
		g.Initializer = append(g.Initializer, tensorProto(name, consts[name]))
	}
	for _, o := range outputs {
		g.Output = append(g.Output, valueProto(o, tensor.Float32, nil))
	}
	return g
}

func modelProto(opset int64, g *onnxpb.GraphProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{IrVersion: proto.Int64(8), OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(opset)}}, Graph: g}
}

func parseModel(t testing.TB, mp *onnxpb.ModelProto) *loader.ONNXModel {
	t.Helper()
	b, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := loader.ParseONNX("test.onnx", b, "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runNodes compiles and runs a graph of nodes on feeds; consts are
// initializers.
func runNodes(t testing.TB, opset int64, nodes []*onnxpb.NodeProto, feeds, consts map[string]*tensor.Tensor, outputs ...string) (map[string]*tensor.Tensor, error) {
	t.Helper()
	g, err := Compile(parseModel(t, modelProto(opset, graphProto(nodes, feeds, consts, outputs...))), Options{Threads: 1})
	if err != nil {
		return nil, err
	}
	return g.Run(feeds)
}

func ints64(shape []int, v ...int64) *tensor.Tensor {
	return tensor.FromInts(tensor.Int64, v, shape...)
}

// seq is a float tensor holding sin(1 + 0.7·i): distinct, signed values.
func seq(shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(math.Sin(1 + 0.7*float64(i)))
	}
	return t
}

// within checks got against want with the node suite's tolerance.
func within(t *testing.T, what string, got *tensor.Tensor, want []float32, shape []int) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no output", what)
		return
	}
	if !tensor.SameShape(got.Shape, shape) || len(got.Data) != len(want) {
		t.Errorf("%s: shape %v (%d values), want %v (%d)", what, got.Shape, len(got.Data), shape, len(want))
		return
	}
	for i := range want {
		if d := math.Abs(float64(got.Data[i] - want[i])); d > 1e-6+1e-5*math.Abs(float64(want[i])) || math.IsNaN(d) {
			t.Errorf("%s: [%d] = %g, want %g", what, i, got.Data[i], want[i])
			return
		}
	}
}
