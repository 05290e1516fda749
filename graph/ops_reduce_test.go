package graph

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// unravel turns a flat index into per-axis indices.
func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		idx[d] = i % shape[d]
		i /= shape[d]
	}
	return idx
}

// reduceRef is the obviously right reduction: every value goes to the
// output position of its kept indices.
func reduceRef(op string, x *tensor.Tensor, red []bool) []float32 {
	var kept []int
	for d, s := range x.Shape {
		if !red[d] {
			kept = append(kept, s)
		}
	}
	nout := numel(kept)
	acc := make([]float64, nout)
	cnt := make([]int, nout)
	mx := make([]float64, nout)
	for i := range mx {
		mx[i] = math.Inf(-1)
	}
	outIndex := func(i int) int {
		idx := unravel(i, x.Shape)
		o := 0
		for d := range x.Shape {
			if !red[d] {
				o = o*x.Shape[d] + idx[d]
			}
		}
		return o
	}
	for i, v := range x.Data {
		mx[outIndex(i)] = max(mx[outIndex(i)], float64(v))
	}
	for i := range acc {
		switch op {
		case "ReduceMax":
			acc[i] = math.Inf(-1)
		case "ReduceMin":
			acc[i] = math.Inf(1)
		case "ReduceProd":
			acc[i] = 1
		}
	}
	for i, v := range x.Data {
		o := outIndex(i)
		f := float64(v)
		cnt[o]++
		switch op {
		case "ReduceSum", "ReduceMean", "ReduceLogSum":
			acc[o] += f
		case "ReduceSumSquare", "ReduceL2":
			acc[o] += f * f
		case "ReduceL1":
			acc[o] += math.Abs(f)
		case "ReduceMax":
			acc[o] = math.Max(acc[o], f)
		case "ReduceMin":
			acc[o] = math.Min(acc[o], f)
		case "ReduceProd":
			acc[o] *= f
		case "ReduceLogSumExp":
			acc[o] += math.Exp(f - mx[o])
		}
	}
	out := make([]float32, nout)
	for o, a := range acc {
		switch op {
		case "ReduceMean":
			a /= float64(cnt[o])
		case "ReduceL2":
			a = math.Sqrt(a)
		case "ReduceLogSum":
			a = math.Log(a)
		case "ReduceLogSumExp":
			a = mx[o] + math.Log(a)
		}
		out[o] = float32(a)
	}
	return out
}

func TestReduce(t *testing.T) {
	x0 := seq(2, 3, 1, 4)
	for _, op := range []string{"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceProd", "ReduceLogSum", "ReduceLogSumExp"} {
		for _, c := range []struct {
			axes []int64 // nil: all
			keep int64
		}{{nil, 1}, {[]int64{1}, 1}, {[]int64{-1, 0}, 0}, {[]int64{3}, 0}, {[]int64{0, 2}, 1}, {[]int64{1, 3}, 0}} {
			x := x0
			if op == "ReduceLogSum" { // the log of a sum of positive values
				x = x0.Clone()
				for i, v := range x.Data {
					x.Data[i] = float32(math.Abs(float64(v)))
				}
			}
			red := make([]bool, 4)
			for d := range red {
				red[d] = c.axes == nil
			}
			for _, a := range c.axes {
				red[(a+4)%4] = true
			}
			var shape []int
			for d, s := range x.Shape {
				if !red[d] {
					shape = append(shape, s)
				} else if c.keep == 1 {
					shape = append(shape, 1)
				}
			}
			if shape == nil {
				shape = []int{}
			}
			want := reduceRef(op, x, red)
			// Axes as an attribute (opset 13, 11 for ReduceSum) and as an
			// input (18, 13 for ReduceSum).
			attrOpset, inputOpset := int64(13), int64(18)
			if op == "ReduceSum" {
				attrOpset, inputOpset = 11, 13
			}
			name := fmt.Sprintf("%s axes %v keepdims %d", op, c.axes, c.keep)
			attrs := []*onnxpb.AttributeProto{attrI("keepdims", c.keep)}
			if c.axes != nil {
				attrs = append(attrs, attrIs("axes", c.axes...))
			}
			out, err := runNodes(t, attrOpset, []*onnxpb.NodeProto{nodeProto(op, []string{"x"}, []string{"y"}, attrs...)}, map[string]*tensor.Tensor{"x": x}, nil, "y")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			within(t, name+" (attribute)", out["y"], want, shape)
			in := []string{"x"}
			consts := map[string]*tensor.Tensor{}
			if c.axes != nil {
				in = append(in, "axes")
				consts["axes"] = ints64([]int{len(c.axes)}, c.axes...)
			}
			out, err = runNodes(t, inputOpset, []*onnxpb.NodeProto{nodeProto(op, in, []string{"y"}, attrI("keepdims", c.keep))}, map[string]*tensor.Tensor{"x": x}, consts, "y")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			within(t, name+" (input)", out["y"], want, shape)
		}
	}
	x := x0
	// noop_with_empty_axes: no axes, the identity.
	out, err := runNodes(t, 18, []*onnxpb.NodeProto{nodeProto("ReduceMean", []string{"x"}, []string{"y"}, attrI("noop_with_empty_axes", 1))}, map[string]*tensor.Tensor{"x": x}, nil, "y")
	if err != nil {
		t.Fatal(err)
	}
	within(t, "noop_with_empty_axes", out["y"], x.Data, x.Shape)
	// An axes attribute where the opset wants an input is refused, naming it.
	_, err = runNodes(t, 18, []*onnxpb.NodeProto{nodeProto("ReduceMean", []string{"x"}, []string{"y"}, attrIs("axes", 1))}, map[string]*tensor.Tensor{"x": x}, nil, "y")
	if e, ok := err.(*Error); !ok || e.Kind != Unsupported || e.Attr != "axes" {
		t.Errorf("axes attribute at opset 18: %v", err)
	}
	// Integer reductions are exact.
	xi := ints64([]int{2, 3}, 1<<40, 3, -5, 7, 1<<41, 2)
	out, err = runNodes(t, 13, []*onnxpb.NodeProto{nodeProto("ReduceSum", []string{"x", "axes"}, []string{"y"}, attrI("keepdims", 0))}, map[string]*tensor.Tensor{"x": xi}, map[string]*tensor.Tensor{"axes": ints64([]int{1}, 1)}, "y")
	if err != nil {
		t.Fatal(err)
	}
	if y := out["y"]; y.DType != tensor.Int64 || !slices.Equal(y.Ints, []int64{1<<40 - 2, 1<<41 + 9}) {
		t.Errorf("int64 ReduceSum: %s %v", y.DType, y.Ints)
	}
}

func softmaxRef(x *tensor.Tensor, outer, dim, inner int, logs bool) []float32 {
	out := make([]float32, len(x.Data))
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			at := func(j int) int { return (o*dim+j)*inner + i }
			m := math.Inf(-1)
			for j := 0; j < dim; j++ {
				m = math.Max(m, float64(x.Data[at(j)]))
			}
			s := 0.0
			for j := 0; j < dim; j++ {
				s += math.Exp(float64(x.Data[at(j)]) - m)
			}
			for j := 0; j < dim; j++ {
				v := float64(x.Data[at(j)]) - m
				if logs {
					out[at(j)] = float32(v - math.Log(s))
				} else {
					out[at(j)] = float32(math.Exp(v) / s)
				}
			}
		}
	}
	return out
}

func TestSoftmax(t *testing.T) {
	x := seq(2, 3, 4)
	for i := range x.Data {
		x.Data[i] *= 30 // large enough that a softmax without the max shift overflows
	}
	for _, op := range []string{"Softmax", "LogSoftmax"} {
		for _, c := range []struct {
			opset             int64
			axis              *int64
			outer, dim, inner int
		}{
			{11, nil, 2, 12, 1}, // pre-13 default axis 1: rows of 3·4
			{11, ptr(int64(2)), 6, 4, 1},
			{11, ptr(int64(-2)), 2, 12, 1},
			{11, ptr(int64(0)), 1, 24, 1},
			{13, nil, 6, 4, 1}, // 13+: default -1, one axis
			{13, ptr(int64(1)), 2, 3, 4},
			{13, ptr(int64(0)), 1, 2, 12},
			{13, ptr(int64(-3)), 1, 2, 12},
		} {
			var attrs []*onnxpb.AttributeProto
			if c.axis != nil {
				attrs = append(attrs, attrI("axis", *c.axis))
			}
			out, err := runNodes(t, c.opset, []*onnxpb.NodeProto{nodeProto(op, []string{"x"}, []string{"y"}, attrs...)}, map[string]*tensor.Tensor{"x": x}, nil, "y")
			if err != nil {
				t.Fatal(err)
			}
			within(t, fmt.Sprintf("%s opset %d axis %v", op, c.opset, c.axis), out["y"], softmaxRef(x, c.outer, c.dim, c.inner, op == "LogSoftmax"), x.Shape)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// matmulRef multiplies with NumPy's batching by explicit indices.
func matmulRef(a, b *tensor.Tensor) ([]float32, []int) {
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []int{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int{bs[0], 1}
	}
	m, k, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-1]
	batch, _ := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
	var out []float32
	nb := numel(batch)
	for bi := 0; bi < nb; bi++ {
		idx := unravel(bi, batch)
		off := func(s []int) int { // batch offset in an operand of batch shape s
			o := 0
			for d := range s {
				i := idx[len(batch)-len(s)+d]
				if s[d] == 1 {
					i = 0
				}
				o = o*s[d] + i
			}
			return o
		}
		oa, ob := off(as[:len(as)-2])*m*k, off(bs[:len(bs)-2])*k*n
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				s := 0.0
				for kk := 0; kk < k; kk++ {
					s += float64(a.Data[oa+i*k+kk]) * float64(b.Data[ob+kk*n+j])
				}
				out = append(out, float32(s))
			}
		}
	}
	shape := slices.Clone(batch)
	if len(a.Shape) > 1 {
		shape = append(shape, m)
	}
	if len(b.Shape) > 1 {
		shape = append(shape, n)
	}
	return out, shape
}

func TestMatMul(t *testing.T) {
	for _, c := range [][2][]int{
		{{3, 4}, {4, 5}},
		{{4}, {4, 5}},
		{{3, 4}, {4}},
		{{4}, {4}},
		{{2, 3, 4}, {4, 5}},          // one B for all batches
		{{2, 1, 3, 4}, {3, 4, 5}},    // broadcast batches
		{{3, 4}, {2, 4, 5}},          // a broadcast
		{{2, 70, 33}, {2, 33, 40}},   // large enough for ConvGemm
		{{130, 17}, {17, 300}},       // several column blocks
		{{1, 1, 40, 64}, {64, 1000}}, // and threads
	} {
		a, b := seq(c[0]...), seq(c[1]...)
		for i := range b.Data {
			b.Data[i] = -b.Data[i] * 0.5
		}
		want, shape := matmulRef(a, b)
		for _, threads := range []int{1, 3} {
			g, err := Compile(parseModel(t, modelProto(13, graphProto([]*onnxpb.NodeProto{nodeProto("MatMul", []string{"a", "b"}, []string{"y"})}, map[string]*tensor.Tensor{"a": a, "b": b}, nil, "y"))), Options{Threads: threads})
			if err != nil {
				t.Fatal(err)
			}
			out, err := g.Run(map[string]*tensor.Tensor{"a": a, "b": b})
			if err != nil {
				t.Fatal(err)
			}
			within(t, fmt.Sprintf("MatMul %v × %v, %d threads", c[0], c[1], threads), out["y"], want, shape)
		}
	}
	_, err := runNodes(t, 13, []*onnxpb.NodeProto{nodeProto("MatMul", []string{"a", "b"}, []string{"y"})}, map[string]*tensor.Tensor{"a": seq(3, 4), "b": seq(5, 2)}, nil, "y")
	if err == nil {
		t.Error("MatMul of 3×4 and 5×2: no error")
	}
}

func TestGemm(t *testing.T) {
	m, k, n := 5, 7, 6
	for _, c := range []struct {
		transA, transB int64
		alpha, beta    float32
		cshape         []int // nil: no C
		constB         bool
	}{
		{0, 0, 1, 1, nil, false},
		{1, 0, 0.5, 1, []int{n}, false},
		{0, 1, 1, 2, []int{m, 1}, true},
		{1, 1, 2, 0.25, []int{m, n}, false},
		{0, 1, 1, 1, []int{1}, true},
		{0, 0, 1, 0, []int{m, n}, true},
	} {
		ashape, bshape := []int{m, k}, []int{k, n}
		if c.transA == 1 {
			ashape = []int{k, m}
		}
		if c.transB == 1 {
			bshape = []int{n, k}
		}
		a, b := seq(ashape...), seq(bshape...)
		for i := range b.Data {
			b.Data[i] += 0.25
		}
		aAt := func(i, kk int) float64 {
			if c.transA == 1 {
				return float64(a.Data[kk*m+i])
			}
			return float64(a.Data[i*k+kk])
		}
		bAt := func(kk, j int) float64 {
			if c.transB == 1 {
				return float64(b.Data[j*k+kk])
			}
			return float64(b.Data[kk*n+j])
		}
		var cc *tensor.Tensor
		if c.cshape != nil {
			cc = seq(c.cshape...)
		}
		want := make([]float32, m*n)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				s := 0.0
				for kk := 0; kk < k; kk++ {
					s += aAt(i, kk) * bAt(kk, j)
				}
				s *= float64(c.alpha)
				if cc != nil {
					ci := 0
					switch len(c.cshape) {
					case 1:
						ci = j % c.cshape[0]
					case 2:
						ci = (i%c.cshape[0])*c.cshape[1] + j%c.cshape[1]
					}
					s += float64(c.beta) * float64(cc.Data[ci])
				}
				want[i*n+j] = float32(s)
			}
		}
		feeds := map[string]*tensor.Tensor{"a": a}
		consts := map[string]*tensor.Tensor{}
		if c.constB {
			consts["b"] = b
		} else {
			feeds["b"] = b
		}
		in := []string{"a", "b"}
		if cc != nil {
			in = append(in, "c")
			feeds["c"] = cc
		}
		out, err := runNodes(t, 13, []*onnxpb.NodeProto{nodeProto("Gemm", in, []string{"y"}, attrI("transA", c.transA), attrI("transB", c.transB), attrF("alpha", c.alpha), attrF("beta", c.beta))}, feeds, consts, "y")
		if err != nil {
			t.Fatal(err)
		}
		within(t, fmt.Sprintf("Gemm %+v", c), out["y"], want, []int{m, n})
	}
}
