// Package export writes a ConvLSTM model in other formats: an ONNX graph
// that runs any sequence length, batch and image size, and a safetensors
// state_dict that PyTorch's load_state_dict accepts.
package export

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
)

// ONNXOptions tune the exported graph.
type ONNXOptions struct {
	// Opset of the default domain (11 to 17; 0 means 17). The graph only
	// uses ops whose form is the same across these opsets except Split,
	// which takes its sizes as an attribute up to 12 and as an input from 13.
	Opset int64
	// InitialState adds graph inputs h0_l and c0_l (B, hidden_l, H, W) for
	// every layer; without it the state starts at zero.
	InitialState bool
	// ProducerVersion is recorded in the model (informational).
	ProducerVersion string
}

// ONNX writes m as one ONNX model whose graph runs for any B, T, H and W:
// the time loop is a Scan over axis 1 of `input` (B, T, C, H, W), and the
// zero initial states are built from the input's shape. Outputs are
// `output` (B, T, hidden_last, H, W) and the final `h_l`, `c_l` of every
// layer. The four gates are split in the model's gate order, so weights are
// written exactly as stored.
func ONNX(m *convlstm.Model, w io.Writer, opts ONNXOptions) error {
	if err := m.Validate(); err != nil {
		return err
	}
	opset := opts.Opset
	if opset == 0 {
		opset = 17
	}
	if opset < 11 || opset > 17 {
		return fmt.Errorf("export: opset %d: supported are 11 to 17", opset)
	}
	nl := len(m.Layers)
	var inits []*onnxpb.TensorProto
	var nodes []*onnxpb.NodeProto
	last := m.Layers[nl-1].HiddenDim

	// Main graph: states, then the Scan.
	inputs := []*onnxpb.ValueInfoProto{tensorInfo("input", dimParam("batch"), dimParam("time"), dimValue(m.InputDim()), dimParam("height"), dimParam("width"))}
	var scanIn []string
	if !opts.InitialState {
		inits = append(inits, int64Tensor("shape_idx_b", []int64{0}), int64Tensor("shape_idx_hw", []int64{3, 4}))
		nodes = append(nodes,
			node("Shape", "input_shape", []string{"input"}, []string{"input_shape"}),
			node("Gather", "batch_dim", []string{"input_shape", "shape_idx_b"}, []string{"batch_dim"}, intAttr("axis", 0)),
			node("Gather", "hw_dims", []string{"input_shape", "shape_idx_hw"}, []string{"hw_dims"}, intAttr("axis", 0)))
	}
	for l, ly := range m.Layers {
		if opts.InitialState {
			h, c := fmt.Sprintf("h0_%d", l), fmt.Sprintf("c0_%d", l)
			inputs = append(inputs,
				tensorInfo(h, dimParam("batch"), dimValue(ly.HiddenDim), dimParam("height"), dimParam("width")),
				tensorInfo(c, dimParam("batch"), dimValue(ly.HiddenDim), dimParam("height"), dimParam("width")))
			scanIn = append(scanIn, h, c)
			continue
		}
		hid := fmt.Sprintf("hidden_%d", l)
		shp := fmt.Sprintf("state_shape_%d", l)
		zero := fmt.Sprintf("zero_state_%d", l)
		inits = append(inits, int64Tensor(hid, []int64{int64(ly.HiddenDim)}))
		nodes = append(nodes,
			node("Concat", shp, []string{"batch_dim", hid, "hw_dims"}, []string{shp}, intAttr("axis", 0)),
			node("ConstantOfShape", zero, []string{shp}, []string{zero}, tensorAttr("value", floatTensor("", []int64{1}, []float32{0}))))
		scanIn = append(scanIn, zero, zero)
	}
	scanIn = append(scanIn, "input")

	// Weights live in the main graph; the body reads them from the outer scope.
	for l, ly := range m.Layers {
		inits = append(inits, floatTensor(fmt.Sprintf("cell_list.%d.conv.weight", l),
			[]int64{int64(4 * ly.HiddenDim), int64(ly.InputDim + ly.HiddenDim), int64(ly.KernelH), int64(ly.KernelW)}, ly.Weight))
		if ly.HasBias {
			inits = append(inits, floatTensor(fmt.Sprintf("cell_list.%d.conv.bias", l), []int64{int64(4 * ly.HiddenDim)}, ly.Bias))
		}
		if opset >= 13 {
			h := int64(ly.HiddenDim)
			inits = append(inits, int64Tensor(fmt.Sprintf("split_%d", l), []int64{h, h, h, h}))
		}
	}

	body, err := cellBody(m, opset)
	if err != nil {
		return err
	}
	var scanOut []string
	var outputs []*onnxpb.ValueInfoProto
	outputs = append(outputs, tensorInfo("output", dimParam("batch"), dimParam("time"), dimValue(last), dimParam("height"), dimParam("width")))
	for l, ly := range m.Layers {
		h, c := fmt.Sprintf("h_%d", l), fmt.Sprintf("c_%d", l)
		scanOut = append(scanOut, h, c)
		outputs = append(outputs,
			tensorInfo(h, dimParam("batch"), dimValue(ly.HiddenDim), dimParam("height"), dimParam("width")),
			tensorInfo(c, dimParam("batch"), dimValue(ly.HiddenDim), dimParam("height"), dimParam("width")))
	}
	scanOut = append(scanOut, "output")
	nodes = append(nodes, node("Scan", "time_loop", scanIn, scanOut,
		graphAttr("body", body),
		intAttr("num_scan_inputs", 1),
		intsAttr("scan_input_axes", 1),
		intsAttr("scan_output_axes", 1)))

	meta := m.Metadata()
	mp := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(8),
		ProducerName:    proto.String("convlstm-go"),
		ProducerVersion: proto.String(opts.ProducerVersion),
		DocString:       proto.String("ConvLSTM (ConvLSTM_pytorch semantics) exported by convlstm-go: input (B,T,C,H,W) -> output (B,T,hidden,H,W), final h_l/c_l per layer."),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}},
		MetadataProps: []*onnxpb.StringStringEntryProto{
			{Key: proto.String(convlstm.MetaGates), Value: proto.String(meta[convlstm.MetaGates])},
			{Key: proto.String(convlstm.MetaConfig), Value: proto.String(meta[convlstm.MetaConfig])},
		},
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("convlstm"),
			Node:        nodes,
			Initializer: inits,
			Input:       inputs,
			Output:      outputs,
		},
	}
	b, err := proto.Marshal(mp)
	if err != nil {
		return fmt.Errorf("export: encoding the ONNX model: %w", err)
	}
	if len(b) > math.MaxInt32 {
		return fmt.Errorf("export: the ONNX model is %d bytes, over protobuf's 2 GiB limit", len(b))
	}
	_, err = w.Write(b)
	return err
}

// cellBody is the Scan body: states (h_l, c_l per layer) and x_t in, new
// states and the last layer's h out. Each layer is the reference cell:
// conv(cat(x, h)) split in gate order, c' = σ(f)·c + σ(i)·tanh(g),
// h' = σ(o)·tanh(c').
func cellBody(m *convlstm.Model, opset int64) (*onnxpb.GraphProto, error) {
	var inputs, outputs []*onnxpb.ValueInfoProto
	var nodes []*onnxpb.NodeProto
	st := func(name string, hid int) *onnxpb.ValueInfoProto {
		return tensorInfo(name, dimParam("batch"), dimValue(hid), dimParam("height"), dimParam("width"))
	}
	for l, ly := range m.Layers {
		inputs = append(inputs, st(fmt.Sprintf("h_in_%d", l), ly.HiddenDim), st(fmt.Sprintf("c_in_%d", l), ly.HiddenDim))
	}
	inputs = append(inputs, st("x_t", m.InputDim()))
	x := "x_t"
	for l, ly := range m.Layers {
		p := fmt.Sprintf("l%d_", l)
		h, c := fmt.Sprintf("h_in_%d", l), fmt.Sprintf("c_in_%d", l)
		convIn := []string{p + "cat", fmt.Sprintf("cell_list.%d.conv.weight", l)}
		if ly.HasBias {
			convIn = append(convIn, fmt.Sprintf("cell_list.%d.conv.bias", l))
		}
		gates := make([]string, 4)
		for k := 0; k < 4; k++ {
			gates[k] = p + "z" + string(m.Gates[k])
		}
		split := node("Split", p+"split", []string{p + "conv", fmt.Sprintf("split_%d", l)}, gates, intAttr("axis", 1))
		if opset < 13 {
			split = node("Split", p+"split", []string{p + "conv"}, gates, intAttr("axis", 1), intsAttr("split", int64(ly.HiddenDim), int64(ly.HiddenDim), int64(ly.HiddenDim), int64(ly.HiddenDim)))
		}
		kh, kw := int64(ly.KernelH), int64(ly.KernelW)
		nodes = append(nodes,
			node("Concat", p+"cat", []string{x, h}, []string{p + "cat"}, intAttr("axis", 1)),
			node("Conv", p+"conv", convIn, []string{p + "conv"},
				intsAttr("kernel_shape", kh, kw), intsAttr("pads", kh/2, kw/2, kh/2, kw/2),
				intsAttr("strides", 1, 1), intsAttr("dilations", 1, 1), intAttr("group", 1)),
			split,
			node("Sigmoid", p+"i", []string{p + "zi"}, []string{p + "i"}),
			node("Sigmoid", p+"f", []string{p + "zf"}, []string{p + "f"}),
			node("Sigmoid", p+"o", []string{p + "zo"}, []string{p + "o"}),
			node("Tanh", p+"g", []string{p + "zg"}, []string{p + "g"}),
			node("Mul", p+"fc", []string{p + "f", c}, []string{p + "fc"}),
			node("Mul", p+"ig", []string{p + "i", p + "g"}, []string{p + "ig"}),
			node("Add", p+"c", []string{p + "fc", p + "ig"}, []string{fmt.Sprintf("c_out_%d", l)}),
			node("Tanh", p+"tc", []string{fmt.Sprintf("c_out_%d", l)}, []string{p + "tc"}),
			node("Mul", p+"h", []string{p + "o", p + "tc"}, []string{fmt.Sprintf("h_out_%d", l)}),
		)
		outputs = append(outputs, st(fmt.Sprintf("h_out_%d", l), ly.HiddenDim), st(fmt.Sprintf("c_out_%d", l), ly.HiddenDim))
		x = fmt.Sprintf("h_out_%d", l)
	}
	last := m.Layers[len(m.Layers)-1].HiddenDim
	nodes = append(nodes, node("Identity", "y_t", []string{x}, []string{"y_t"}))
	outputs = append(outputs, st("y_t", last))
	return &onnxpb.GraphProto{Name: proto.String("convlstm_step"), Node: nodes, Input: inputs, Output: outputs}, nil
}

func node(op, name string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(name), Input: in, Output: out, Attribute: attrs}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func intsAttr(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func tensorAttr(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

func graphAttr(name string, g *onnxpb.GraphProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: g}
}

func floatTensor(name string, dims []int64, v []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	t := &onnxpb.TensorProto{Dims: dims, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), RawData: raw}
	if name != "" {
		t.Name = proto.String(name)
	}
	return t
}

func int64Tensor(name string, v []int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: []int64{int64(len(v))}, DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: v}
}

type dim = *onnxpb.TensorShapeProto_Dimension

func dimParam(s string) dim {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: s}}
}

func dimValue(v int) dim {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}}
}

func tensorInfo(name string, dims ...dim) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    &onnxpb.TensorShapeProto{Dim: dims},
		}}},
	}
}
