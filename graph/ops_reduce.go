package graph

import (
	"math"
	"slices"

	"github.com/convlstm-go/convlstm-go/ops"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Reductions, Softmax/LogSoftmax, MatMul and Gemm: ops that combine values
// along axes. Reductions accumulate in float64 over contiguous runs;
// MatMul and Gemm run on ops.ConvGemm (plain offsets: row k of B starts at
// k·n) or, for a few rows, a direct loop.

func init() {
	// Every reduction takes axes, keepdims and (once axes became an input)
	// noop_with_empty_axes; axesInput is the opset from which axes is an
	// input instead of an attribute.
	reduce := func(name string, axesInput int64, since ...int64) *opDef {
		return &opDef{name: name, since: since, in: io(1, 2), out: io(1, 1),
			attrs: []attrSpec{aInts("axes").upTo(axesInput - 1), aInt("keepdims"), aInt("noop_with_empty_axes").sinceV(axesInput)},
			check: checkReduce(axesInput), run: runReduce}
	}
	register(
		reduce("ReduceSum", 13, 1, 11, 13),
		reduce("ReduceMean", 18, 1, 11, 13, 18),
		reduce("ReduceMax", 18, 1, 11, 12, 13, 18, 20),
		reduce("ReduceMin", 18, 1, 11, 12, 13, 18, 20),
		reduce("ReduceL1", 18, 1, 11, 13, 18),
		reduce("ReduceL2", 18, 1, 11, 13, 18),
		reduce("ReduceSumSquare", 18, 1, 11, 13, 18),
		reduce("ReduceProd", 18, 1, 11, 13, 18),
		reduce("ReduceLogSum", 18, 1, 11, 13, 18),
		reduce("ReduceLogSumExp", 18, 1, 11, 13, 18),
		&opDef{name: "Softmax", since: v(1, 11, 13), in: io(1, 1), out: io(1, 1), attrs: []attrSpec{aInt("axis")}, run: runSoftmax},
		&opDef{name: "LogSoftmax", since: v(1, 11, 13), in: io(1, 1), out: io(1, 1), attrs: []attrSpec{aInt("axis")}, run: runSoftmax},
		&opDef{name: "MatMul", since: v(1, 9, 13), in: io(2, 2), out: io(1, 1), run: runMatMul},
		&opDef{name: "Gemm", since: v(7, 9, 11, 13), in: io(2, 3), out: io(1, 1),
			attrs: []attrSpec{aFloat("alpha"), aFloat("beta"), aInt("transA"), aInt("transB")}, check: checkGemm, run: runGemm},
	)
}

func checkReduce(axesInput int64) func(c *compiler, n *node) error {
	return func(c *compiler, n *node) error {
		if n.opset < axesInput && len(n.in) > 1 {
			return c.errf(n, "opset %d %s takes one input (axes is an attribute until opset %d)", n.opset, n.op, axesInput-1)
		}
		return nil
	}
}

const (
	redSum = iota
	redSumSquare
	redL1
	redMax
	redMin
	redProd
	redExp // sum of exp(v - max): the second pass of LogSumExp
)

func runReduce(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	rank := len(t.Shape)
	var axes []int64
	haveAxes := false
	if len(in) > 1 && in[1] != nil {
		a, err := x.ints(n, in[1], "axes")
		if err != nil {
			return nil, err
		}
		axes, haveAxes = a, len(a) > 0
	} else if a, ok := attrInts(n, "axes"); ok {
		axes, haveAxes = a, len(a) > 0
	}
	if !haveAxes && attrInt(n, "noop_with_empty_axes", 0) != 0 {
		return one(view(t, t.Shape), nil)
	}
	red := make([]bool, rank)
	if !haveAxes {
		for i := range red {
			red[i] = true
		}
	}
	for _, a := range axes {
		ax, ok := normAxis(a, rank)
		if !ok || red[ax] {
			return nil, x.errf(n, "axes %v are out of range for rank %d or repeated", axes, rank)
		}
		red[ax] = true
	}
	keep := attrInt(n, "keepdims", 1) != 0
	var shape []int
	count := 1
	for i, d := range t.Shape {
		switch {
		case !red[i]:
			shape = append(shape, d)
		case keep:
			shape = append(shape, 1)
			count *= d
		default:
			count *= d
		}
	}
	if shape == nil {
		shape = []int{}
	}
	if count == 0 && (n.op == "ReduceMax" || n.op == "ReduceMin") {
		return nil, x.errf(n, "%s over zero values (input %v)", n.op, t.Shape)
	}
	if !t.IsFloat() {
		return x.reduceInts(n, t, red, shape)
	}
	out := x.newFloat(shape)
	if x.dry {
		return one(out, nil)
	}
	acc := make([]float64, len(out.Data))
	switch n.op {
	case "ReduceSum", "ReduceMean", "ReduceLogSum":
		reduceRuns(acc, t.Data, t.Shape, red, redSum, nil)
	case "ReduceSumSquare", "ReduceL2":
		reduceRuns(acc, t.Data, t.Shape, red, redSumSquare, nil)
	case "ReduceL1":
		reduceRuns(acc, t.Data, t.Shape, red, redL1, nil)
	case "ReduceMax":
		reduceRuns(acc, t.Data, t.Shape, red, redMax, nil)
	case "ReduceMin":
		reduceRuns(acc, t.Data, t.Shape, red, redMin, nil)
	case "ReduceProd":
		reduceRuns(acc, t.Data, t.Shape, red, redProd, nil)
	case "ReduceLogSumExp":
		mx := make([]float64, len(acc))
		reduceRuns(mx, t.Data, t.Shape, red, redMax, nil)
		for i, m := range mx {
			if math.IsInf(m, 0) {
				mx[i] = 0 // all -inf (or +inf): exp(v - 0) gives the right sum
			}
		}
		reduceRuns(acc, t.Data, t.Shape, red, redExp, mx)
		for i := range acc {
			acc[i] = mx[i] + math.Log(acc[i])
		}
	}
	for i, a := range acc {
		switch n.op {
		case "ReduceMean":
			a /= float64(count)
		case "ReduceL2":
			a = math.Sqrt(a)
		case "ReduceLogSum":
			a = math.Log(a)
		}
		out.Data[i] = float32(a)
	}
	return one(out, nil)
}

// reduceRuns accumulates src (of shape) into acc (one value per kept
// position) with op, over the axes marked in red. Unit axes are dropped
// and neighbouring axes of one kind merged; the innermost axis is then
// either reduced (a contiguous run folds into one accumulator) or kept (a
// run of accumulators takes a run of values).
func reduceRuns(acc []float64, src []float32, shape []int, red []bool, op int, mx []float64) {
	var dims []int
	var isRed []bool
	for i, d := range shape {
		if d == 1 {
			continue
		}
		if k := len(dims) - 1; k >= 0 && isRed[k] == red[i] {
			dims[k] *= d
			continue
		}
		dims, isRed = append(dims, d), append(isRed, red[i])
	}
	switch op {
	case redMax:
		for i := range acc {
			acc[i] = math.Inf(-1)
		}
	case redMin:
		for i := range acc {
			acc[i] = math.Inf(1)
		}
	case redProd:
		for i := range acc {
			acc[i] = 1
		}
	default:
		clear(acc)
	}
	if numel(shape) == 0 {
		return
	}
	if len(dims) == 0 {
		dims, isRed = []int{1}, []bool{true}
	}
	// Output strides of the merged axes (0 on reduced ones).
	ostr := make([]int, len(dims))
	s := 1
	for i := len(dims) - 1; i >= 0; i-- {
		if !isRed[i] {
			ostr[i] = s
			s *= dims[i]
		}
	}
	last := len(dims) - 1
	run := dims[last]
	idx := make([]int, last)
	o := 0
	for i := 0; i < len(src); i += run {
		r := src[i : i+run]
		if isRed[last] {
			acc[o] = foldRun(acc[o], r, op, mx, o)
		} else {
			a := acc[o : o+run]
			switch op {
			case redSum:
				for j, v := range r {
					a[j] += float64(v)
				}
			case redSumSquare:
				for j, v := range r {
					a[j] += float64(v) * float64(v)
				}
			case redL1:
				for j, v := range r {
					a[j] += math.Abs(float64(v))
				}
			case redMax:
				for j, v := range r {
					if float64(v) > a[j] || v != v {
						a[j] = float64(v)
					}
				}
			case redMin:
				for j, v := range r {
					if float64(v) < a[j] || v != v {
						a[j] = float64(v)
					}
				}
			case redProd:
				for j, v := range r {
					a[j] *= float64(v)
				}
			case redExp:
				m := mx[o : o+run]
				for j, v := range r {
					a[j] += math.Exp(float64(v) - m[j])
				}
			}
		}
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			o += ostr[d]
			if idx[d] < dims[d] {
				break
			}
			o -= ostr[d] * dims[d]
			idx[d] = 0
		}
	}
}

// foldRun folds a contiguous run into one accumulator.
func foldRun(a float64, r []float32, op int, mx []float64, o int) float64 {
	switch op {
	case redSum:
		for _, v := range r {
			a += float64(v)
		}
	case redSumSquare:
		for _, v := range r {
			a += float64(v) * float64(v)
		}
	case redL1:
		for _, v := range r {
			a += math.Abs(float64(v))
		}
	case redMax:
		for _, v := range r {
			if float64(v) > a || v != v {
				a = float64(v)
			}
		}
	case redMin:
		for _, v := range r {
			if float64(v) < a || v != v {
				a = float64(v)
			}
		}
	case redProd:
		for _, v := range r {
			a *= float64(v)
		}
	case redExp:
		m := mx[o]
		for _, v := range r {
			a += math.Exp(float64(v) - m)
		}
	}
	return a
}

// reduceInts reduces an integer tensor exactly (Sum, Max, Min, Prod).
func (x *exec) reduceInts(n *node, t *tensor.Tensor, red []bool, shape []int) ([]*tensor.Tensor, error) {
	switch n.op {
	case "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd":
	default:
		return nil, x.unsupported(n, "", "%s of %s values is not supported (float only)", n.op, t.DType)
	}
	if t.DType == tensor.Bool && n.op != "ReduceMax" && n.op != "ReduceMin" {
		return nil, x.errf(n, "%s of bool values", n.op)
	}
	if !x.has(t) {
		return one(&tensor.Tensor{Shape: shape, DType: t.DType}, nil)
	}
	out := newInts(t.DType, shape)
	for i := range out.Ints {
		switch n.op {
		case "ReduceMax":
			out.Ints[i] = math.MinInt64
		case "ReduceMin":
			out.Ints[i] = math.MaxInt64
		case "ReduceProd":
			out.Ints[i] = 1
		}
	}
	// Output index of each input position: strides 0 on reduced axes.
	ostr := make([]int, len(t.Shape))
	s := 1
	for i := len(t.Shape) - 1; i >= 0; i-- {
		if !red[i] {
			ostr[i] = s
			s *= t.Shape[i]
		}
	}
	idx := make([]int, len(t.Shape))
	o := 0
	for _, v := range t.Ints {
		switch n.op {
		case "ReduceSum":
			out.Ints[o] += v
		case "ReduceMax":
			out.Ints[o] = max(out.Ints[o], v)
		case "ReduceMin":
			out.Ints[o] = min(out.Ints[o], v)
		case "ReduceProd":
			out.Ints[o] *= v
		}
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			o += ostr[d]
			if idx[d] < t.Shape[d] {
				break
			}
			o -= ostr[d] * t.Shape[d]
			idx[d] = 0
		}
	}
	for i, v := range out.Ints {
		out.Ints[i] = wrapInt(v, t.DType)
	}
	return one(out, nil)
}

// runSoftmax runs Softmax and LogSoftmax. Before opset 13 the input is
// coerced to 2-D at axis (default 1) and each row of prod(shape[axis:])
// values is normalised; from 13 the normalisation runs along the one axis
// (default -1).
func runSoftmax(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	if !t.IsFloat() {
		return nil, x.errf(n, "input %q must be float, is %s", n.in[0], typeName(t))
	}
	rank := len(t.Shape)
	def := int64(-1)
	if n.opset < 13 {
		def = 1
	}
	a := attrInt(n, "axis", def)
	var outer, dim, inner int
	if n.opset < 13 {
		if a < 0 {
			a += int64(rank)
		}
		if a < 0 || a > int64(rank) || rank == 0 {
			return nil, x.errf(n, "axis %d is out of range for rank %d", attrInt(n, "axis", def), rank)
		}
		outer, dim, inner = numel(t.Shape[:a]), numel(t.Shape[a:]), 1
	} else {
		ax, ok := normAxis(a, rank)
		if !ok {
			return nil, x.errf(n, "axis %d is out of range for rank %d", a, rank)
		}
		outer, inner = blocks(t.Shape, ax)
		dim = t.Shape[ax]
	}
	out := x.newFloat(t.Shape)
	if x.dry || numel(t.Shape) == 0 {
		return one(out, nil)
	}
	logs := n.op == "LogSoftmax"
	var col []float32
	if inner > 1 {
		col = make([]float32, dim)
	}
	for o := 0; o < outer; o++ {
		base := o * dim * inner
		if inner == 1 {
			softmaxRow(out.Data[base:base+dim], t.Data[base:base+dim], logs)
			continue
		}
		// Strided rows: gather each into col, normalise, scatter back.
		for i := 0; i < inner; i++ {
			for j := range col {
				col[j] = t.Data[base+j*inner+i]
			}
			softmaxRow(col, col, logs)
			for j, v := range col {
				out.Data[base+j*inner+i] = v
			}
		}
	}
	return one(out, nil)
}

// softmaxRow writes the softmax (or log-softmax) of src into dst (which
// may be src).
func softmaxRow(dst, src []float32, logs bool) {
	m := float32(math.Inf(-1))
	for _, v := range src {
		m = max(m, v)
	}
	sum := 0.0
	if logs {
		for _, v := range src {
			sum += math.Exp(float64(v - m))
		}
		l := float32(math.Log(sum))
		for j, v := range src {
			dst[j] = v - m - l
		}
		return
	}
	for j, v := range src {
		e := math.Exp(float64(v - m))
		sum += e
		dst[j] = float32(e)
	}
	inv := 1 / sum
	for j, v := range dst {
		dst[j] = float32(float64(v) * inv)
	}
}

func runMatMul(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b := in[0], in[1]
	if !a.IsFloat() || !b.IsFloat() {
		return nil, x.unsupported(n, "", "MatMul of %s and %s: only float is supported", typeName(a), typeName(b))
	}
	if len(a.Shape) == 0 || len(b.Shape) == 0 {
		return nil, x.errf(n, "inputs %v and %v: MatMul needs rank ≥ 1", a.Shape, b.Shape)
	}
	// NumPy's rules: a 1-D a is a row (1, k), a 1-D b a column (k, 1), and
	// the added axis is removed from the result.
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []int{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int{bs[0], 1}
	}
	m, k, k2, nn := as[len(as)-2], as[len(as)-1], bs[len(bs)-2], bs[len(bs)-1]
	if k != k2 {
		return nil, x.errf(n, "inputs %v and %v: inner dimensions %d and %d differ", a.Shape, b.Shape, k, k2)
	}
	batch, ok := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
	if !ok {
		return nil, x.errf(n, "batch dimensions of %v and %v do not broadcast", a.Shape, b.Shape)
	}
	shape := slices.Clone(batch)
	if len(a.Shape) > 1 {
		shape = append(shape, m)
	}
	if len(b.Shape) > 1 {
		shape = append(shape, nn)
	}
	out := x.newFloat(shape)
	if x.dry {
		return one(out, nil)
	}
	abatch, bbatch := as[:len(as)-2], bs[:len(bs)-2]
	if numel(bbatch) == 1 && numel(abatch) == numel(batch) {
		// One B for every batch: the batches of a are rows of one product.
		x.matmul(out.Data, a.Data, b.Data, numel(batch)*m, k, nn, false)
		return one(out, nil)
	}
	ia, ib := batchOffsets(batch, abatch, bbatch)
	for i := range ia {
		x.matmul(out.Data[i*m*nn:(i+1)*m*nn], a.Data[ia[i]*m*k:], b.Data[ib[i]*k*nn:], m, k, nn, false)
	}
	return one(out, nil)
}

// batchOffsets lists, for each position of the broadcast batch shape, the
// matching batch index in a and in b.
func batchOffsets(batch, as, bs []int) (ia, ib []int) {
	total := numel(batch)
	ia, ib = make([]int, 0, total), make([]int, 0, total)
	sa, sb := bstrides(as, batch), bstrides(bs, batch)
	idx := make([]int, len(batch))
	oa, ob := 0, 0
	for i := 0; i < total; i++ {
		ia, ib = append(ia, oa), append(ib, ob)
		for d := len(batch) - 1; d >= 0; d-- {
			idx[d]++
			oa += sa[d]
			ob += sb[d]
			if idx[d] < batch[d] {
				break
			}
			oa -= sa[d] * batch[d]
			ob -= sb[d] * batch[d]
			idx[d] = 0
		}
	}
	return ia, ib
}

// matmul computes c (m×n) = a (m×k) · b (k×n), all row-major, or adds the
// product to c when accumulate is set.
func (x *exec) matmul(c, a, b []float32, m, k, n int, accumulate bool) {
	if m == 0 || n == 0 {
		return
	}
	c = c[:m*n]
	if !accumulate {
		clear(c)
	}
	if k == 0 {
		return
	}
	if m < 4 || m*n*k < 1<<12 || int64(k)*int64(n) > math.MaxInt32 {
		// Few rows: row i of c gathers a[i, kk]·(row kk of b).
		for i := 0; i < m; i++ {
			ci := c[i*n : (i+1)*n]
			for kk, aik := range a[i*k : (i+1)*k] {
				bk := b[kk*n : (kk+1)*n]
				for j, bv := range bk {
					ci[j] += aik * bv
				}
			}
		}
		return
	}
	pa := ops.PackA(a[:m*k], m, k)
	offs := make([]int32, k)
	for kk := range offs {
		offs[kk] = int32(kk * n)
	}
	threads := x.g.threads
	if m*n*k < 1<<16 || threads < 2 {
		threads = 1
	}
	per := (n + threads - 1) / threads
	per = (per + 15) &^ 15
	parts := (n + per - 1) / per
	parallel(parts, func(part int) {
		j0, j1 := part*per, min((part+1)*per, n)
		if j0 < j1 {
			ops.ConvGemm(c[j0:], n, pa, nil, b[j0:], offs, j1-j0, true)
		}
	})
}

func checkGemm(c *compiler, n *node) error {
	if n.opset < 11 && len(n.in) < 3 {
		return c.errf(n, "opset %d Gemm needs C (optional from opset 11)", n.opset)
	}
	// A constant B is laid out (k×n) once.
	if b := c.prog.constant(n.in[1]); b != nil && b.IsFloat() && len(b.Shape) == 2 {
		if attrInt(n, "transB", 0) != 0 {
			t := make([]float32, len(b.Data))
			transposeInto(t, b.Data, b.Shape, []int{1, 0})
			n.gemmB = t
		} else {
			n.gemmB = b.Data
		}
	}
	return nil
}

// runGemm: Y = alpha·A'·B' + beta·C, A' = transA ? Aᵀ : A (m×k), B' =
// transB ? Bᵀ : B (k×n), C broadcast to (m, n).
func runGemm(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b := in[0], in[1]
	var c *tensor.Tensor
	if len(in) > 2 {
		c = in[2]
	}
	for i, t := range []*tensor.Tensor{a, b, c} {
		if t != nil && (!t.IsFloat() || (i < 2 && len(t.Shape) != 2)) {
			return nil, x.errf(n, "input %q is %s %v: Gemm takes float matrices", n.in[i], typeName(t), t.Shape)
		}
	}
	transA, transB := attrInt(n, "transA", 0) != 0, attrInt(n, "transB", 0) != 0
	m, k := a.Shape[0], a.Shape[1]
	if transA {
		m, k = k, m
	}
	k2, nn := b.Shape[0], b.Shape[1]
	if transB {
		k2, nn = nn, k2
	}
	if k != k2 {
		return nil, x.errf(n, "A' is %d×%d and B' %d×%d: inner dimensions differ", m, k, k2, nn)
	}
	if c != nil {
		if s, ok := broadcastShape(c.Shape, []int{m, nn}); !ok || !slices.Equal(s, []int{m, nn}) {
			return nil, x.errf(n, "C %v does not broadcast to (%d, %d)", c.Shape, m, nn)
		}
	}
	out := x.newFloat([]int{m, nn})
	if x.dry {
		return one(out, nil)
	}
	alpha, beta := attrFloat(n, "alpha", 1), attrFloat(n, "beta", 1)
	ad := a.Data
	if transA || alpha != 1 {
		ad = make([]float32, m*k)
		if transA {
			transposeInto(ad, a.Data, a.Shape, []int{1, 0})
		} else {
			copy(ad, a.Data)
		}
		if alpha != 1 {
			for i := range ad {
				ad[i] *= alpha
			}
		}
	}
	bd := n.gemmB
	if bd == nil || len(bd) != k*nn {
		bd = b.Data
		if transB {
			bd = make([]float32, k*nn)
			transposeInto(bd, b.Data, b.Shape, []int{1, 0})
		}
	}
	accumulate := false
	if c != nil && beta != 0 {
		broadcastInto(out.Data, c.Data, c.Shape, []int{m, nn})
		if beta != 1 {
			for i := range out.Data {
				out.Data[i] *= beta
			}
		}
		accumulate = true
	}
	x.matmul(out.Data, ad, bd, m, k, nn, accumulate)
	return one(out, nil)
}
