package graph

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// at reads x at per-axis indices.
func at(x *tensor.Tensor, idx []int) float32 {
	o := 0
	for d, i := range idx {
		o = o*x.Shape[d] + i
	}
	return x.Data[o]
}

func TestExpandTile(t *testing.T) {
	x := seq(3, 1, 2)
	// Expand: bidirectional broadcast, so the shape may be shorter or hold 1s.
	for _, s := range [][]int64{{2, 3, 4, 2}, {4, 1}, {1, 3, 5, 2}, {3, 0, 2}} {
		out, err := runNodes(t, 13, []*onnxpb.NodeProto{nodeProto("Expand", []string{"x", "s"}, []string{"y"})}, map[string]*tensor.Tensor{"x": x}, map[string]*tensor.Tensor{"s": ints64([]int{len(s)}, s...)}, "y")
		if err != nil {
			t.Fatal(err)
		}
		sh := make([]int, len(s))
		for i, v := range s {
			sh[i] = int(v)
		}
		shape, _ := broadcastShape(x.Shape, sh)
		want := make([]float32, numel(shape))
		for i := range want {
			idx := unravel(i, shape)[len(shape)-3:]
			for d := range idx {
				if x.Shape[d] == 1 {
					idx[d] = 0
				}
			}
			want[i] = at(x, idx)
		}
		within(t, fmt.Sprintf("Expand to %v", s), out["y"], want, shape)
	}
	for _, r := range [][]int64{{2, 3, 1}, {1, 1, 1}, {1, 4, 3}, {0, 1, 2}} {
		out, err := runNodes(t, 13, []*onnxpb.NodeProto{nodeProto("Tile", []string{"x", "r"}, []string{"y"})}, map[string]*tensor.Tensor{"x": x}, map[string]*tensor.Tensor{"r": ints64([]int{3}, r...)}, "y")
		if err != nil {
			t.Fatal(err)
		}
		shape := []int{3 * int(r[0]), int(r[1]), 2 * int(r[2])}
		want := make([]float32, numel(shape))
		for i := range want {
			idx := unravel(i, shape)
			for d := range idx {
				idx[d] %= x.Shape[d]
			}
			want[i] = at(x, idx)
		}
		within(t, fmt.Sprintf("Tile %v", r), out["y"], want, shape)
	}
}

func TestTransposeRanks(t *testing.T) {
	check := func(shape []int, p []int64) {
		t.Helper()
		rank := len(shape)
		x := seq(shape...)
		out, err := runNodes(t, 13, []*onnxpb.NodeProto{nodeProto("Transpose", []string{"x"}, []string{"y"}, attrIs("perm", p...))}, map[string]*tensor.Tensor{"x": x}, nil, "y")
		if err != nil {
			t.Fatal(err)
		}
		oshape := make([]int, rank)
		for i, q := range p {
			oshape[i] = shape[q]
		}
		want := make([]float32, len(x.Data))
		for i := range want {
			oi := unravel(i, oshape)
			ii := make([]int, rank)
			for d, q := range p {
				ii[q] = oi[d]
			}
			want[i] = at(x, ii)
		}
		within(t, fmt.Sprintf("Transpose %v perm %v", shape, p), out["y"], want, oshape)
	}
	// Every rank to 8, a few permutations each, against index arithmetic.
	for rank := 1; rank <= 8; rank++ {
		shape := make([]int, rank)
		for i := range shape {
			shape[i] = 1 + (i*5+3)%3
		}
		rev := make([]int64, rank)
		rot := make([]int64, rank)
		swap := make([]int64, rank)
		for i := range rev {
			rev[i] = int64(rank - 1 - i)
			rot[i] = int64((i + 1) % rank)
			swap[i] = int64(i)
		}
		if rank > 1 {
			swap[0], swap[1] = 1, 0
		}
		for _, p := range [][]int64{rev, rot, swap} {
			check(shape, p)
		}
	}
	// Planes larger than a tile, with partial tiles; NCHW to NHWC and an
	// OpenSTL-style patch permute.
	check([]int{3, 37, 41}, []int64{0, 2, 1})
	check([]int{2, 20, 3, 17}, []int64{0, 2, 3, 1})
	check([]int{2, 3, 4, 2, 5, 2}, []int64{0, 3, 5, 1, 2, 4})
}

func TestShapeOps(t *testing.T) {
	x := seq(2, 3, 4)
	feeds := map[string]*tensor.Tensor{"x": x}
	for _, c := range []struct {
		name   string
		opset  int64
		nodes  []*onnxpb.NodeProto
		consts map[string]*tensor.Tensor
		want   *tensor.Tensor // values compared exactly (ints) or by shape and data
	}{
		{"flatten default", 13, []*onnxpb.NodeProto{nodeProto("Flatten", []string{"x"}, []string{"y"})}, nil, tensor.FromFloats(x.Data, 2, 12)},
		{"flatten axis 0", 13, []*onnxpb.NodeProto{nodeProto("Flatten", []string{"x"}, []string{"y"}, attrI("axis", 0))}, nil, tensor.FromFloats(x.Data, 1, 24)},
		{"flatten axis -1", 13, []*onnxpb.NodeProto{nodeProto("Flatten", []string{"x"}, []string{"y"}, attrI("axis", -1))}, nil, tensor.FromFloats(x.Data, 6, 4)},
		{"size", 13, []*onnxpb.NodeProto{nodeProto("Size", []string{"x"}, []string{"y"})}, nil, ints64(nil, 24)},
		{"shape start end", 15, []*onnxpb.NodeProto{nodeProto("Shape", []string{"x"}, []string{"y"}, attrI("start", -2), attrI("end", 10))}, nil, ints64([]int{2}, 3, 4)},
		{"range int", 13, []*onnxpb.NodeProto{nodeProto("Range", []string{"a", "b", "c"}, []string{"y"})}, map[string]*tensor.Tensor{"a": ints64(nil, 10), "b": ints64(nil, 1), "c": ints64(nil, -4)}, ints64([]int{3}, 10, 6, 2)},
		{"range float", 13, []*onnxpb.NodeProto{nodeProto("Range", []string{"a", "b", "c"}, []string{"y"})}, map[string]*tensor.Tensor{"a": tensor.FromFloats([]float32{1}), "b": tensor.FromFloats([]float32{2}), "c": tensor.FromFloats([]float32{0.25})}, tensor.FromFloats([]float32{1, 1.25, 1.5, 1.75}, 4)},
		{"cast to int32 of a shape", 13, []*onnxpb.NodeProto{nodeProto("Shape", []string{"x"}, []string{"s"}), nodeProto("Cast", []string{"s"}, []string{"y"}, attrI("to", 6))}, nil, tensor.FromInts(tensor.Int32, []int64{2, 3, 4}, 3)},
		{"dropout", 13, []*onnxpb.NodeProto{nodeProto("Dropout", []string{"x"}, []string{"y", "m"})}, nil, x},
		{"dropout training, ratio 0", 13, []*onnxpb.NodeProto{nodeProto("Dropout", []string{"x", "r", "tm"}, []string{"y", "m"})}, map[string]*tensor.Tensor{"r": tensor.FromFloats([]float32{0}), "tm": tensor.FromInts(tensor.Bool, []int64{1})}, x},
		{"dropout 7", 7, []*onnxpb.NodeProto{nodeProto("Dropout", []string{"x"}, []string{"y"}, attrF("ratio", 0.3))}, nil, x},
		{"constant of shape", 13, []*onnxpb.NodeProto{nodeProto("ConstantOfShape", []string{"s"}, []string{"y"}, &onnxpb.AttributeProto{Name: ptr("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: tensorProto("", ints64([]int{1}, 7))})}, map[string]*tensor.Tensor{"s": ints64([]int{2}, 2, 2)}, ints64([]int{2, 2}, 7, 7, 7, 7)},
		{"split 18 num_outputs", 18, []*onnxpb.NodeProto{nodeProto("Split", []string{"x"}, []string{"y", "z"}, attrI("axis", -1), attrI("num_outputs", 2))}, nil, nil},
		{"squeeze 13 no axes", 13, []*onnxpb.NodeProto{nodeProto("Unsqueeze", []string{"x", "a"}, []string{"u"}), nodeProto("Squeeze", []string{"u"}, []string{"y"})}, map[string]*tensor.Tensor{"a": ints64([]int{2}, 0, -1)}, x},
		{"gather int32 indices", 13, []*onnxpb.NodeProto{nodeProto("Gather", []string{"x", "i"}, []string{"y"}, attrI("axis", 2))}, map[string]*tensor.Tensor{"i": tensor.FromInts(tensor.Int32, []int64{-1}, 1)}, nil},
	} {
		out, err := runNodes(t, c.opset, c.nodes, feeds, c.consts, "y")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		y := out["y"]
		switch {
		case c.want == nil:
			if y == nil {
				t.Errorf("%s: no output", c.name)
			}
		case c.want.IsFloat():
			within(t, c.name, y, c.want.Data, c.want.Shape)
		default:
			if y.DType != c.want.DType || !slices.Equal(y.Shape, c.want.Shape) || !slices.Equal(y.Ints, c.want.Ints) {
				t.Errorf("%s: %s %v %v, want %s %v %v", c.name, y.DType, y.Shape, y.Ints, c.want.DType, c.want.Shape, c.want.Ints)
			}
		}
	}
}

// TestRefusals: what we do not implement is refused at compile time with
// an error naming op, node and attribute, never run.
func TestRefusals(t *testing.T) {
	x := map[string]*tensor.Tensor{"x": seq(2, 3)}
	for _, c := range []struct {
		opset int64
		node  *onnxpb.NodeProto
		attr  string
		want  string
	}{
		{13, nodeProto("Transpose", []string{"x"}, []string{"y"}, attrI("bogus", 1)), "bogus", `attribute "bogus" is not supported`},
		{13, nodeProto("Cast", []string{"x"}, []string{"y"}, attrI("to", 8)), "to", "to=8"},
		{13, nodeProto("Softmax", []string{"x"}, []string{"y"}, attrIs("axis", 1)), "axis", "has type INTS, want INT"},
		{13, nodeProto("Split", []string{"x"}, []string{"y"}, attrIs("split", 3)), "split", `attribute "split" is not supported`},
		{13, nodeProto("Dropout", []string{"x"}, []string{"y"}, attrF("ratio", 0.5)), "ratio", `attribute "ratio" is not supported`},
		{13, nodeProto("Dropout", []string{"x", "", "tm"}, []string{"y"}), "training_mode", "training_mode=true with ratio 0.5"},
		{10, nodeProto("Range", []string{"x", "x", "x"}, []string{"y"}), "", "Range is supported at opsets 11 to 21, the model uses opset 10"},
		{13, nodeProto("Shape", []string{"x"}, []string{"y"}, attrI("start", 1)), "start", `attribute "start" is not supported`}, // from opset 15
		{13, nodeProto("NoSuchOp", []string{"x"}, []string{"y"}), "", "operator NoSuchOp is not supported"},
	} {
		_, err := runNodes(t, c.opset, []*onnxpb.NodeProto{c.node}, x, map[string]*tensor.Tensor{"tm": tensor.FromInts(tensor.Bool, []int64{1})}, "y")
		e, ok := err.(*Error)
		if !ok || !strings.Contains(err.Error(), c.want) || e.Attr != c.attr || e.Node != "y" || e.Op != c.node.GetOpType() {
			t.Errorf("%s: %v, want %q naming attribute %q", c.node.GetOpType(), err, c.want, c.attr)
		}
	}
}

// TestCheck lists every problem of a model at once.
func TestCheck(t *testing.T) {
	nodes := []*onnxpb.NodeProto{
		nodeProto("Relu", []string{"x"}, []string{"a"}),
		nodeProto("Erfish", []string{"a"}, []string{"b"}),
		nodeProto("Transpose", []string{"b"}, []string{"c"}, attrI("bogus", 1)),
		nodeProto("Cast", []string{"c"}, []string{"d"}, attrI("to", 8)),
		nodeProto("Add", []string{"d", "nowhere"}, []string{"y"}),
	}
	m := parseModel(t, modelProto(13, graphProto(nodes, map[string]*tensor.Tensor{"x": seq(2)}, nil, "y")))
	errs := Check(m)
	want := []string{"Erfish", `"bogus"`, "to=8", `"nowhere"`}
	if len(errs) != len(want) {
		t.Fatalf("%d problems, want %d: %v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if !strings.Contains(errs[i].Error(), w) {
			t.Errorf("problem %d: %v, want it to name %s", i, errs[i], w)
		}
	}
	if _, err := Compile(m, Options{}); err == nil || err.Error() != errs[0].Error() {
		t.Errorf("Compile: %v, want the first problem Check lists", err)
	}
}
