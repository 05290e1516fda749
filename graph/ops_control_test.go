package graph

import (
	"fmt"
	"slices"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

func scaled(x *tensor.Tensor, k float32) []float32 {
	out := make([]float32, len(x.Data))
	for i, v := range x.Data {
		out[i] = v * k
	}
	return out
}

// TestLoop: acc ← acc + x·i, reading x from the outer scope, with a trip
// count, a condition, both, or a condition the body turns false; the scan
// output stacks each iteration's incoming acc.
func TestLoop(t *testing.T) {
	x := seq(2, 3)
	body := func(stopAfter int64) *onnxpb.GraphProto {
		nodes := []*onnxpb.NodeProto{
			nodeProto("Cast", []string{"i"}, []string{"fi"}, attrI("to", 1)),
			nodeProto("Mul", []string{"x", "fi"}, []string{"xi"}),
			nodeProto("Add", []string{"acc", "xi"}, []string{"acc2"}),
		}
		consts := map[string]*tensor.Tensor{}
		if stopAfter >= 0 {
			// cond = (stopAfter - i) != 0, computed from integers.
			nodes = append(nodes, nodeProto("Sub", []string{"k", "i"}, []string{"d"}), nodeProto("Cast", []string{"d"}, []string{"c2"}, attrI("to", 9)))
			consts["k"] = ints64(nil, stopAfter)
		} else {
			nodes = append(nodes, nodeProto("Identity", []string{"c"}, []string{"c2"}))
		}
		g := graphProto(nodes, nil, consts, "c2", "acc2", "acc")
		g.Input = []*onnxpb.ValueInfoProto{valueProto("i", tensor.Int64, []int{}), valueProto("c", tensor.Bool, []int{}), valueProto("acc", tensor.Float32, nil)}
		g.Output[2] = valueProto("acc", tensor.Float32, []int{2, 3})
		return g
	}
	b := func(v int64) *tensor.Tensor { return tensor.FromInts(tensor.Bool, []int64{v}) }
	for _, c := range []struct {
		name      string
		m, cond   *tensor.Tensor // nil: omitted
		stopAfter int64
		final     float32   // acc = final·x
		scans     []float32 // incoming acc of each iteration, in units of x
	}{
		{"trip count", ints64(nil, 3), nil, -1, 4, []float32{1, 1, 2}},
		{"trip count and true", ints64(nil, 2), b(1), -1, 2, []float32{1, 1}},
		{"false", ints64(nil, 3), b(0), -1, 1, nil},
		{"zero trips", ints64(nil, 0), b(1), -1, 1, nil},
		{"condition from the body", nil, b(1), 2, 4, []float32{1, 1, 2}},
		{"trip count before the condition", ints64(nil, 2), b(1), 5, 2, []float32{1, 1}},
	} {
		in := []string{"", ""}
		consts := map[string]*tensor.Tensor{}
		if c.m != nil {
			in[0], consts["m"] = "m", c.m
		}
		if c.cond != nil {
			in[1], consts["cond"] = "cond", c.cond
		}
		in = append(in, "x")
		out, err := runNodes(t, 13, []*onnxpb.NodeProto{nodeProto("Loop", in, []string{"acc", "all"}, attrG("body", body(c.stopAfter)))}, map[string]*tensor.Tensor{"x": x}, consts, "acc", "all")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		within(t, c.name+": final", out["acc"], scaled(x, c.final), []int{2, 3})
		var want []float32
		for _, k := range c.scans {
			want = append(want, scaled(x, k)...)
		}
		if want == nil {
			want = []float32{}
		}
		within(t, c.name+": scan output", out["all"], want, []int{len(c.scans), 2, 3})
	}
}

// TestIf: the branch the condition picks runs, reading outer values; an
// unknown condition in the dry pass still gives shapes when both branches
// agree.
func TestIf(t *testing.T) {
	x := seq(2, 3)
	thenG := graphProto([]*onnxpb.NodeProto{nodeProto("Relu", []string{"x"}, []string{"t"})}, nil, nil, "t")
	elseG := graphProto([]*onnxpb.NodeProto{nodeProto("Mul", []string{"x", "x"}, []string{"e"})}, nil, nil, "e")
	relu, sq := make([]float32, 6), make([]float32, 6)
	for i, v := range x.Data {
		relu[i], sq[i] = max(v, 0), v*v
	}
	for _, c := range []struct {
		cond []*onnxpb.NodeProto
		want []float32
	}{
		{[]*onnxpb.NodeProto{nodeProto("Size", []string{"x"}, []string{"n"}), nodeProto("Cast", []string{"n"}, []string{"b"}, attrI("to", 9))}, relu},
		{[]*onnxpb.NodeProto{nodeProto("Sub", []string{"x", "x"}, []string{"z"}), nodeProto("ReduceSum", []string{"z"}, []string{"s"}, attrI("keepdims", 0)), nodeProto("Cast", []string{"s"}, []string{"b"}, attrI("to", 9))}, sq},
	} {
		nodes := append(c.cond, nodeProto("If", []string{"b"}, []string{"y"}, attrG("then_branch", thenG), attrG("else_branch", elseG)))
		out, err := runNodes(t, 13, nodes, map[string]*tensor.Tensor{"x": x}, nil, "y")
		if err != nil {
			t.Fatal(err)
		}
		within(t, fmt.Sprintf("If after %s", c.cond[0].GetOpType()), out["y"], c.want, []int{2, 3})
	}
}

// TestScanDirections: reversed inputs and outputs, scan axes other than 0.
func TestScanDirections(t *testing.T) {
	x := seq(2, 3) // scanned along axis 1: three steps of (2,)
	body := graphProto([]*onnxpb.NodeProto{nodeProto("Add", []string{"s", "xs"}, []string{"s2"}), nodeProto("Identity", []string{"s2"}, []string{"o"})}, nil, nil, "s2", "o")
	body.Input = []*onnxpb.ValueInfoProto{valueProto("s", tensor.Float32, nil), valueProto("xs", tensor.Float32, nil)}
	for _, c := range []struct {
		inDir, outDir, outAxis int64
	}{{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {1, 1, 1}, {0, 0, -1}} {
		out, err := runNodes(t, 11, []*onnxpb.NodeProto{nodeProto("Scan", []string{"s0", "x"}, []string{"s", "o"}, attrG("body", body), attrI("num_scan_inputs", 1),
			attrIs("scan_input_axes", 1), attrIs("scan_input_directions", c.inDir), attrIs("scan_output_directions", c.outDir), attrIs("scan_output_axes", c.outAxis))},
			map[string]*tensor.Tensor{"x": x}, map[string]*tensor.Tensor{"s0": tensor.New(2)}, "s", "o")
		if err != nil {
			t.Fatal(err)
		}
		// Reference: running sums over the columns in scan order.
		var steps [][]float32
		acc := []float32{0, 0}
		for k := 0; k < 3; k++ {
			col := k
			if c.inDir == 1 {
				col = 2 - k
			}
			acc = []float32{acc[0] + x.Data[col], acc[1] + x.Data[3+col]}
			steps = append(steps, acc)
		}
		within(t, fmt.Sprintf("Scan %+v: state", c), out["s"], acc, []int{2})
		if c.outDir == 1 {
			slices.Reverse(steps)
		}
		var want []float32
		shape := []int{3, 2}
		if c.outAxis != 0 { // (2, 3): step k in column k
			shape = []int{2, 3}
			want = make([]float32, 6)
			for k, s := range steps {
				want[k], want[3+k] = s[0], s[1]
			}
		} else {
			for _, s := range steps {
				want = append(want, s...)
			}
		}
		within(t, fmt.Sprintf("Scan %+v: output", c), out["o"], want, shape)
	}
}

// TestSequences: a list appended to in a Loop (torch.jit.script's form),
// then read back every way.
func TestSequences(t *testing.T) {
	x := seq(2, 3)
	body := graphProto([]*onnxpb.NodeProto{
		nodeProto("Cast", []string{"i"}, []string{"fi"}, attrI("to", 1)),
		nodeProto("Mul", []string{"x", "fi"}, []string{"xi"}),
		nodeProto("SequenceInsert", []string{"s", "xi"}, []string{"s2"}),
		nodeProto("Identity", []string{"c"}, []string{"c2"}),
	}, nil, nil, "c2", "s2")
	body.Input = []*onnxpb.ValueInfoProto{valueProto("i", tensor.Int64, []int{}), valueProto("c", tensor.Bool, []int{}), {Name: ptr("s")}}
	nodes := []*onnxpb.NodeProto{
		nodeProto("SequenceEmpty", nil, []string{"s0"}, attrI("dtype", 1)),
		nodeProto("Loop", []string{"m", "", "s0"}, []string{"s"}, attrG("body", body)),
		nodeProto("ConcatFromSequence", []string{"s"}, []string{"stacked"}, attrI("axis", 0), attrI("new_axis", 1)),
		nodeProto("ConcatFromSequence", []string{"s"}, []string{"joined"}, attrI("axis", -1)),
		nodeProto("SequenceLength", []string{"s"}, []string{"len"}),
		nodeProto("SequenceAt", []string{"s", "minus1"}, []string{"last"}),
		nodeProto("SequenceErase", []string{"s", "zero"}, []string{"s1"}),
		nodeProto("ConcatFromSequence", []string{"s1"}, []string{"rest"}, attrI("axis", 0)),
		nodeProto("SplitToSequence", []string{"x"}, []string{"cols"}, attrI("axis", 1), attrI("keepdims", 0)),
		nodeProto("ConcatFromSequence", []string{"cols"}, []string{"back"}, attrI("axis", 1), attrI("new_axis", 1)),
		nodeProto("SplitToSequence", []string{"x", "two"}, []string{"chunks"}, attrI("axis", 1)),
		nodeProto("SequenceAt", []string{"chunks", "minus1"}, []string{"tail"}),
	}
	consts := map[string]*tensor.Tensor{"m": ints64(nil, 3), "minus1": ints64(nil, -1), "zero": ints64(nil, 0), "two": ints64(nil, 2)}
	out, err := runNodes(t, 13, nodes, map[string]*tensor.Tensor{"x": x}, consts, "stacked", "joined", "len", "last", "rest", "back", "tail")
	if err != nil {
		t.Fatal(err)
	}
	var stacked []float32
	for k := range 3 {
		stacked = append(stacked, scaled(x, float32(k))...)
	}
	within(t, "stacked", out["stacked"], stacked, []int{3, 2, 3})
	joined := make([]float32, 0, 18)
	for r := range 2 {
		for k := range 3 {
			joined = append(joined, scaled(x, float32(k))[r*3:r*3+3]...)
		}
	}
	within(t, "joined", out["joined"], joined, []int{2, 9})
	if l := out["len"]; l.DType != tensor.Int64 || !slices.Equal(l.Ints, []int64{3}) {
		t.Errorf("SequenceLength: %s %v", l.DType, l.Ints)
	}
	within(t, "SequenceAt -1", out["last"], scaled(x, 2), []int{2, 3})
	within(t, "erased", out["rest"], stacked[6:], []int{4, 3})
	within(t, "split and stacked back", out["back"], x.Data, []int{2, 3})
	within(t, "last chunk of 2", out["tail"], []float32{x.Data[2], x.Data[5]}, []int{2, 1})
	// A sequence where a tensor is wanted is refused, naming the op.
	_, err = runNodes(t, 13, []*onnxpb.NodeProto{nodeProto("SequenceConstruct", []string{"x"}, []string{"s"}), nodeProto("Relu", []string{"s"}, []string{"y"})}, map[string]*tensor.Tensor{"x": x}, nil, "y")
	if e, ok := err.(*Error); !ok || e.Op != "Relu" || e.Kind != Unsupported {
		t.Errorf("Relu of a sequence: %v", err)
	}
}

// TestScan8: the opset-8 form, batched on axis 0, scanned along axis 1,
// with an optional sequence_lens that must cover the whole axis.
func TestScan8(t *testing.T) {
	x := seq(2, 3, 2) // batch 2, 3 steps of (2,)
	body := graphProto([]*onnxpb.NodeProto{nodeProto("Add", []string{"s", "xs"}, []string{"s2"}), nodeProto("Identity", []string{"s2"}, []string{"o"})}, nil, nil, "s2", "o")
	body.Input = []*onnxpb.ValueInfoProto{valueProto("s", tensor.Float32, nil), valueProto("xs", tensor.Float32, nil)}
	for _, lens := range []*tensor.Tensor{nil, tensor.FromInts(tensor.Int32, []int64{3, 3}, 2)} {
		in := []string{"", "s0", "x"}
		consts := map[string]*tensor.Tensor{"s0": tensor.New(2, 2)}
		if lens != nil {
			in[0], consts["lens"] = "lens", lens
		}
		out, err := runNodes(t, 8, []*onnxpb.NodeProto{nodeProto("Scan", in, []string{"s", "o"}, attrG("body", body), attrI("num_scan_inputs", 1), attrIs("directions", 1))},
			map[string]*tensor.Tensor{"x": x}, consts, "s", "o")
		if err != nil {
			t.Fatal(err)
		}
		var final, steps []float32
		for b := range 2 {
			acc := []float32{0, 0}
			var bs []float32
			for k := 2; k >= 0; k-- { // reversed
				o := (b*3 + k) * 2
				acc = []float32{acc[0] + x.Data[o], acc[1] + x.Data[o+1]}
				bs = append(bs, acc...)
			}
			final = append(final, acc...)
			steps = append(steps, bs...)
		}
		within(t, "Scan-8 states", out["s"], final, []int{2, 2})
		within(t, "Scan-8 outputs", out["o"], steps, []int{2, 3, 2})
	}
	_, err := runNodes(t, 8, []*onnxpb.NodeProto{nodeProto("Scan", []string{"lens", "s0", "x"}, []string{"s", "o"}, attrG("body", body), attrI("num_scan_inputs", 1))},
		map[string]*tensor.Tensor{"x": x}, map[string]*tensor.Tensor{"s0": tensor.New(2, 2), "lens": tensor.FromInts(tensor.Int32, []int64{3, 2}, 2)}, "s", "o")
	if e, ok := err.(*Error); !ok || e.Kind != Unsupported {
		t.Errorf("short sequence: %v", err)
	}
}
