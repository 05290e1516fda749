package graph

import (
	"math"
	"slices"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Shape and data movement: ops that rearrange values without arithmetic.
// They work on float and integer tensors alike (a type switch per call,
// generic copy loops over contiguous runs); integer results are computed
// in the dry pass too, since shapes flow through them.

func init() {
	register(
		&opDef{name: "Identity", since: v(1, 13, 14, 16, 19, 21), in: io(1, 1), out: io(1, 1), seqIn: true, run: runIdentity},
		&opDef{name: "Constant", since: v(1, 9, 11, 12, 13, 19, 21), in: io(0, 0), out: io(1, 1),
			attrs: []attrSpec{aTensor("value"), aFloat("value_float").sinceV(12), aFloats("value_floats").sinceV(12), aInt("value_int").sinceV(12), aInts("value_ints").sinceV(12)},
			check: checkConstant, run: runConstant},
		&opDef{name: "Concat", since: v(4, 11, 13), in: io(1, many), out: io(1, 1), attrs: []attrSpec{aInt("axis")}, check: needAttr("axis"), run: runConcat},
		&opDef{name: "Split", since: v(2, 11, 13, 18), in: io(1, 2), out: io(1, many),
			attrs: []attrSpec{aInt("axis"), aInts("split").upTo(12), aInt("num_outputs").sinceV(18)}, check: checkSplit, run: runSplit},
		&opDef{name: "Slice", since: v(1, 10, 11, 13), in: io(1, 5), out: io(1, 1),
			attrs: []attrSpec{aInts("starts").upTo(9), aInts("ends").upTo(9), aInts("axes").upTo(9)}, check: checkSlice, run: runSlice},
		&opDef{name: "Gather", since: v(1, 11, 13), in: io(2, 2), out: io(1, 1), attrs: []attrSpec{aInt("axis")}, run: runGather},
		&opDef{name: "Squeeze", since: v(1, 11, 13, 21), in: io(1, 2), out: io(1, 1), attrs: []attrSpec{aInts("axes").upTo(12)}, run: runSqueeze},
		&opDef{name: "Unsqueeze", since: v(1, 11, 13, 21), in: io(1, 2), out: io(1, 1), attrs: []attrSpec{aInts("axes").upTo(12)}, check: checkUnsqueeze, run: runUnsqueeze},
		&opDef{name: "Shape", since: v(1, 13, 15, 19, 21), in: io(1, 1), out: io(1, 1), attrs: []attrSpec{aInt("start").sinceV(15), aInt("end").sinceV(15)}, run: runShape},
		&opDef{name: "ConstantOfShape", since: v(9, 20, 21), in: io(1, 1), out: io(1, 1), attrs: []attrSpec{aTensor("value")}, check: checkConstantOfShape, run: runConstantOfShape},
		&opDef{name: "Transpose", since: v(1, 13, 21), in: io(1, 1), out: io(1, 1), attrs: []attrSpec{aInts("perm")}, run: runTranspose},
		&opDef{name: "Reshape", since: v(5, 13, 14, 19, 21), in: io(2, 2), out: io(1, 1), attrs: []attrSpec{aInt("allowzero").sinceV(14)}, run: runReshape},
		&opDef{name: "Cast", since: v(6, 9, 13, 19, 21), in: io(1, 1), out: io(1, 1), attrs: []attrSpec{aInt("to"), aInt("saturate").sinceV(19)}, check: checkCast, run: runCast},
		&opDef{name: "CastLike", since: v(15, 19, 21), in: io(2, 2), out: io(1, 1), attrs: []attrSpec{aInt("saturate").sinceV(19)}, run: runCastLike},
		&opDef{name: "Flatten", since: v(1, 9, 11, 13, 21), in: io(1, 1), out: io(1, 1), attrs: []attrSpec{aInt("axis")}, run: runFlatten},
		&opDef{name: "Expand", since: v(8, 13), in: io(2, 2), out: io(1, 1), run: runExpand},
		&opDef{name: "Tile", since: v(6, 13), in: io(2, 2), out: io(1, 1), run: runTile},
		&opDef{name: "Size", since: v(1, 13, 19, 21), in: io(1, 1), out: io(1, 1), run: runSize},
		&opDef{name: "Range", since: v(11), in: io(3, 3), out: io(1, 1), run: runRange},
		// Dropout before 7 had is_test, training (random) by default.
		&opDef{name: "Dropout", since: v(7, 10, 12, 13), in: io(1, 3), out: io(1, 2),
			attrs: []attrSpec{aFloat("ratio").upTo(11), aInt("seed").sinceV(12)},
			check: checkDropout, run: runDropout},
	)
}

// v lists since-versions; io an input or output count range.
func v(since ...int64) []int64 { return since }
func io(lo, hi int) [2]int     { return [2]int{lo, hi} }

// needAttr makes an attribute required.
func needAttr(name string) func(c *compiler, n *node) error {
	return func(c *compiler, n *node) error {
		if !hasAttr(n, name) {
			return c.errAttr(n, name, "missing attribute %s", name)
		}
		return nil
	}
}

func one(t *tensor.Tensor, err error) ([]*tensor.Tensor, error) {
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{t}, nil
}

// view is a tensor of a new shape sharing t's values.
func view(t *tensor.Tensor, shape []int) *tensor.Tensor {
	return &tensor.Tensor{Shape: shape, DType: t.DType, Data: t.Data, Ints: t.Ints}
}

func normAxis(axis int64, rank int) (int, bool) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, false
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), true
}

// axisAttr reads and normalises an axis attribute for a tensor of rank.
func (x *exec) axisAttr(n *node, name string, def int64, rank int) (int, error) {
	a := attrInt(n, name, def)
	ax, ok := normAxis(a, rank)
	if !ok {
		return 0, x.errf(n, "%s %d is out of range for rank %d", name, a, rank)
	}
	return ax, nil
}

// blocks views shape as (outer, dim[axis], inner).
func blocks(shape []int, axis int) (outer, inner int) {
	outer, inner = 1, 1
	for i, d := range shape {
		if i < axis {
			outer *= d
		} else if i > axis {
			inner *= d
		}
	}
	return
}

func runIdentity(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return in[:1], nil
}

func checkConstant(c *compiler, n *node) error {
	if len(n.attrs) != 1 {
		return c.errf(n, "want exactly one value attribute, has %d (sparse and string constants are not supported)", len(n.attrs))
	}
	for name, a := range n.attrs {
		switch name {
		case "value":
			t, err := loader.DecodeAttributeTensor(c.file, a.T)
			if err != nil {
				return c.unsupported(n, name, "value: %v", err)
			}
			n.value = fromONNX(t)
		case "value_float":
			n.value = tensor.FromFloats([]float32{a.GetF()})
		case "value_floats":
			n.value = tensor.FromFloats(slices.Clone(a.Floats), len(a.Floats))
		case "value_int":
			n.value = tensor.FromInts(tensor.Int64, []int64{a.GetI()})
		case "value_ints":
			n.value = tensor.FromInts(tensor.Int64, slices.Clone(a.Ints), len(a.Ints))
		}
	}
	if n.value.Shape == nil {
		n.value.Shape = []int{}
	}
	if n.value.IsFloat() && n.value.Data == nil {
		n.value.Data = []float32{}
	}
	if !n.value.IsFloat() && n.value.Ints == nil {
		n.value.Ints = []int64{}
	}
	return nil
}

// runConstant: Constant nodes are evaluated at compile time and never
// reach the runner; a run returns the value all the same.
func runConstant(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return []*tensor.Tensor{n.value}, nil
}

func runConcat(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	first := in[0]
	axis, err := x.axisAttr(n, "axis", 0, len(first.Shape))
	if err != nil {
		return nil, err
	}
	shape := slices.Clone(first.Shape)
	shape[axis] = 0
	for i, v := range in {
		if v == nil {
			return nil, x.errf(n, "input #%d is empty", i)
		}
		if !sameType(v, first) || len(v.Shape) != len(first.Shape) {
			return nil, x.errf(n, "input %q is %s %v, input %q is %s %v: want the same type and rank", n.in[i], typeName(v), v.Shape, n.in[0], typeName(first), first.Shape)
		}
		for d := range v.Shape {
			if d != axis && v.Shape[d] != first.Shape[d] {
				return nil, x.errf(n, "input %q has shape %v, input %q %v: they may differ only on axis %d", n.in[i], v.Shape, n.in[0], first.Shape, axis)
			}
		}
		shape[axis] += v.Shape[axis]
	}
	out := x.like(first, shape)
	if !x.has(in...) {
		out.Ints = nil
		return one(out, nil)
	}
	outer, inner := blocks(shape, axis)
	if first.IsFloat() {
		concatInto(out.Data, in, func(t *tensor.Tensor) []float32 { return t.Data }, outer, inner, axis)
	} else {
		concatInto(out.Ints, in, func(t *tensor.Tensor) []int64 { return t.Ints }, outer, inner, axis)
	}
	return one(out, nil)
}

// concatInto copies, for each of outer rows, each input's block of
// dim·inner values.
func concatInto[E any](dst []E, in []*tensor.Tensor, get func(*tensor.Tensor) []E, outer, inner, axis int) {
	o := 0
	for r := 0; r < outer; r++ {
		for _, t := range in {
			w := t.Shape[axis] * inner
			o += copy(dst[o:o+w], get(t)[r*w:(r+1)*w])
		}
	}
}

func checkSplit(c *compiler, n *node) error {
	if n.opset < 13 && len(n.in) > 1 {
		return c.errf(n, "opset %d Split takes one input (split is an attribute until opset 12)", n.opset)
	}
	if hasAttr(n, "num_outputs") && len(n.in) > 1 && n.in[1] != "" {
		return c.errAttr(n, "num_outputs", "both num_outputs and the split input are given")
	}
	return nil
}

func runSplit(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	axis, err := x.axisAttr(n, "axis", 0, len(t.Shape))
	if err != nil {
		return nil, err
	}
	dim := t.Shape[axis]
	var sizes []int64
	switch {
	case len(in) > 1 && in[1] != nil:
		if sizes, err = x.ints(n, in[1], "split"); err != nil {
			return nil, err
		}
	case hasAttr(n, "split"):
		sizes, _ = attrInts(n, "split")
	default:
		k := int64(len(n.out))
		if hasAttr(n, "num_outputs") {
			if k = attrInt(n, "num_outputs", 0); k != int64(len(n.out)) || k < 1 {
				return nil, x.errf(n, "num_outputs %d, the node has %d outputs", k, len(n.out))
			}
			// Opset 18: ceil(dim/k) per output, the last one smaller.
			per := (int64(dim) + k - 1) / k
			rest := int64(dim)
			for i := int64(0); i < k; i++ {
				sizes = append(sizes, min(per, rest))
				rest -= min(per, rest)
			}
		} else {
			if int64(dim)%k != 0 {
				return nil, x.errf(n, "axis %d of size %d does not split evenly into %d outputs", axis, dim, k)
			}
			for i := int64(0); i < k; i++ {
				sizes = append(sizes, int64(dim)/k)
			}
		}
	}
	if len(sizes) != len(n.out) {
		return nil, x.errf(n, "%d split sizes for %d outputs", len(sizes), len(n.out))
	}
	sum := int64(0)
	for _, s := range sizes {
		if s < 0 {
			return nil, x.errf(n, "negative split size in %v", sizes)
		}
		sum += s
	}
	if sum != int64(dim) {
		return nil, x.errf(n, "split sizes %v add up to %d, axis %d of input %q has %d", sizes, sum, axis, n.in[0], dim)
	}
	outer, inner := blocks(t.Shape, axis)
	outs := make([]*tensor.Tensor, len(sizes))
	start := 0
	for k, s := range sizes {
		shape := slices.Clone(t.Shape)
		shape[axis] = int(s)
		if n.out[k] == "" {
			outs[k] = &tensor.Tensor{Shape: shape, DType: t.DType}
			start += int(s)
			continue
		}
		o := x.like(t, shape)
		if x.has(t) {
			if t.IsFloat() {
				copyBlock(o.Data, t.Data, outer, dim*inner, start*inner, int(s)*inner)
			} else {
				copyBlock(o.Ints, t.Ints, outer, dim*inner, start*inner, int(s)*inner)
			}
		} else {
			o.Ints = nil
		}
		outs[k] = o
		start += int(s)
	}
	return outs, nil
}

// copyBlock copies [off, off+w) of each of outer rows of width stride.
func copyBlock[E any](dst, src []E, outer, stride, off, w int) {
	for o := 0; o < outer; o++ {
		copy(dst[o*w:(o+1)*w], src[o*stride+off:o*stride+off+w])
	}
}

func checkSlice(c *compiler, n *node) error {
	if n.opset < 10 {
		if len(n.in) != 1 {
			return c.errf(n, "opset %d Slice takes one input (starts and ends are attributes), has %d", n.opset, len(n.in))
		}
		if !hasAttr(n, "starts") || !hasAttr(n, "ends") {
			return c.errf(n, "missing attribute starts or ends")
		}
	} else if len(n.in) < 3 {
		return c.errf(n, "opset %d Slice needs data, starts and ends inputs, has %d inputs", n.opset, len(n.in))
	}
	return nil
}

func runSlice(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	rank := len(t.Shape)
	var starts, ends, axes, steps []int64
	if n.opset < 10 {
		starts, _ = attrInts(n, "starts")
		ends, _ = attrInts(n, "ends")
		axes, _ = attrInts(n, "axes")
	} else {
		var err error
		if starts, err = x.ints(n, in[1], "starts"); err != nil {
			return nil, err
		}
		if ends, err = x.ints(n, in[2], "ends"); err != nil {
			return nil, err
		}
		if len(in) > 3 && in[3] != nil {
			if axes, err = x.ints(n, in[3], "axes"); err != nil {
				return nil, err
			}
		}
		if len(in) > 4 && in[4] != nil {
			if steps, err = x.ints(n, in[4], "steps"); err != nil {
				return nil, err
			}
		}
	}
	if len(starts) != len(ends) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		return nil, x.errf(n, "starts %v, ends %v, axes %v and steps %v must have the same length", starts, ends, axes, steps)
	}
	start := make([]int, rank)
	step := make([]int, rank)
	count := slices.Clone(t.Shape)
	for i := range step {
		step[i] = 1
	}
	seen := make([]bool, rank)
	for k := range starts {
		ax := int64(k)
		if axes != nil {
			ax = axes[k]
		}
		a, ok := normAxis(ax, rank)
		if !ok || seen[a] {
			return nil, x.errf(n, "axis %d is out of range for rank %d or repeated", ax, rank)
		}
		seen[a] = true
		st := int64(1)
		if steps != nil {
			st = steps[k]
		}
		if st == 0 {
			return nil, x.errf(n, "step 0 on axis %d", a)
		}
		dim := int64(t.Shape[a])
		b, e := starts[k], ends[k]
		if b < 0 {
			b += dim
		}
		if e < 0 {
			e += dim
		}
		if st > 0 {
			b = min(max(b, 0), dim)
			e = min(max(e, 0), dim)
		} else {
			b = min(max(b, 0), dim-1)
			e = min(max(e, -1), dim-1)
		}
		c := int64(0)
		if st > 0 && e > b {
			c = (e - b + st - 1) / st
		} else if st < 0 && e < b {
			c = (b - e + (-st) - 1) / (-st)
		}
		start[a], step[a], count[a] = int(b), int(st), int(c)
	}
	out := x.like(t, count)
	if !x.has(t) {
		out.Ints = nil
		return one(out, nil)
	}
	if t.IsFloat() {
		stridedInto(out.Data, t.Data, t.Shape, start, step, count)
	} else {
		stridedInto(out.Ints, t.Ints, t.Shape, start, step, count)
	}
	return one(out, nil)
}

// stridedInto gathers src[start + i·step] over every axis into dst, by
// contiguous runs of the last axis when its step is 1.
func stridedInto[E any](dst, src []E, shape, start, step, count []int) {
	total := numel(count)
	if total == 0 {
		return
	}
	rank := len(shape)
	if rank == 0 {
		dst[0] = src[0]
		return
	}
	str := make([]int, rank)
	acc := 1
	for i := rank - 1; i >= 0; i-- {
		str[i] = acc
		acc *= shape[i]
	}
	last := rank - 1
	run, lstep := count[last], step[last]
	idx := make([]int, rank)
	base := 0
	for d := 0; d < rank; d++ {
		base += start[d] * str[d]
	}
	for o := 0; o < total; o += run {
		if lstep == 1 {
			copy(dst[o:o+run], src[base:base+run])
		} else {
			for i, s := 0, base; i < run; i, s = i+1, s+lstep {
				dst[o+i] = src[s]
			}
		}
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			base += step[d] * str[d]
			if idx[d] < count[d] {
				break
			}
			base -= step[d] * str[d] * count[d]
			idx[d] = 0
		}
	}
}

func runGather(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t, idx := in[0], in[1]
	if len(t.Shape) == 0 {
		return nil, x.errf(n, "data %q is a scalar: Gather needs rank ≥ 1", n.in[0])
	}
	axis, err := x.axisAttr(n, "axis", 0, len(t.Shape))
	if err != nil {
		return nil, err
	}
	if idx.IsFloat() || idx.DType == tensor.Bool {
		return nil, x.errf(n, "indices %q must be int32 or int64, are %s", n.in[1], typeName(idx))
	}
	dim := t.Shape[axis]
	shape := append(append(slices.Clone(t.Shape[:axis]), idx.Shape...), t.Shape[axis+1:]...)
	out := x.like(t, shape)
	if idx.Ints == nil {
		out.Ints = nil
		if x.dry {
			return one(out, nil) // indices computed from floats: checked when running
		}
	}
	for _, i := range idx.Ints {
		if i < -int64(dim) || i >= int64(dim) {
			return nil, x.errf(n, "index %d is out of range for axis %d of size %d (input %q %v)", i, axis, dim, n.in[0], t.Shape)
		}
	}
	if !x.has(t) {
		out.Ints = nil
		return one(out, nil)
	}
	outer, inner := blocks(t.Shape, axis)
	if t.IsFloat() {
		gatherInto(out.Data, t.Data, outer, dim, inner, idx.Ints)
	} else {
		gatherInto(out.Ints, t.Ints, outer, dim, inner, idx.Ints)
	}
	return one(out, nil)
}

// gatherInto copies, for each of outer rows, the inner-sized blocks at the
// given indices (negative ones count from the end).
func gatherInto[E any](dst, src []E, outer, dim, inner int, idx []int64) {
	o := 0
	if inner == 1 {
		for r := 0; r < outer; r++ {
			row := src[r*dim : (r+1)*dim]
			for _, i := range idx {
				if i < 0 {
					i += int64(dim)
				}
				dst[o] = row[i]
				o++
			}
		}
		return
	}
	for r := 0; r < outer; r++ {
		for _, i := range idx {
			if i < 0 {
				i += int64(dim)
			}
			b := (r*dim + int(i)) * inner
			o += copy(dst[o:o+inner], src[b:b+inner])
		}
	}
}

// axesInput reads Squeeze/Unsqueeze axes: an attribute up to opset 12, an
// input from 13.
func (x *exec) axesInput(n *node, in []*tensor.Tensor) (axes []int64, have bool, err error) {
	if len(in) > 1 && in[1] != nil {
		a, err := x.ints(n, in[1], "axes")
		return a, true, err
	}
	a, ok := attrInts(n, "axes")
	return a, ok, nil
}

func runSqueeze(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	axes, have, err := x.axesInput(n, in)
	if err != nil {
		return nil, err
	}
	drop := make([]bool, len(t.Shape))
	if have && len(axes) > 0 { // empty axes: as if none were given (as ONNX Runtime reads it)
		for _, a := range axes {
			ax, ok := normAxis(a, len(t.Shape))
			if !ok {
				return nil, x.errf(n, "axis %d is out of range for rank %d", a, len(t.Shape))
			}
			if t.Shape[ax] != 1 {
				return nil, x.errf(n, "cannot squeeze axis %d of size %d (input %q %v)", ax, t.Shape[ax], n.in[0], t.Shape)
			}
			drop[ax] = true
		}
	} else {
		for d, s := range t.Shape {
			drop[d] = s == 1
		}
	}
	shape := []int{}
	for d, s := range t.Shape {
		if !drop[d] {
			shape = append(shape, s)
		}
	}
	return one(view(t, shape), nil)
}

func checkUnsqueeze(c *compiler, n *node) error {
	if n.opset < 13 && !hasAttr(n, "axes") {
		return c.errAttr(n, "axes", "missing attribute axes")
	}
	if n.opset >= 13 && (len(n.in) < 2 || n.in[1] == "") {
		return c.errf(n, "opset %d Unsqueeze needs the axes input", n.opset)
	}
	return nil
}

func runUnsqueeze(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	axes, _, err := x.axesInput(n, in)
	if err != nil {
		return nil, err
	}
	rank := len(t.Shape) + len(axes)
	ins := make([]bool, rank)
	for _, a := range axes {
		ax, ok := normAxis(a, rank)
		if !ok || ins[ax] {
			return nil, x.errf(n, "axes %v are out of range for output rank %d or repeated", axes, rank)
		}
		ins[ax] = true
	}
	shape := make([]int, 0, rank)
	j := 0
	for d := 0; d < rank; d++ {
		if ins[d] {
			shape = append(shape, 1)
		} else {
			shape = append(shape, t.Shape[j])
			j++
		}
	}
	return one(view(t, shape), nil)
}

func runShape(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	rank := int64(len(t.Shape))
	start, end := attrInt(n, "start", 0), attrInt(n, "end", rank)
	if start < 0 {
		start += rank
	}
	if end < 0 {
		end += rank
	}
	start, end = min(max(start, 0), rank), min(max(end, 0), rank)
	vals := []int64{}
	for d := start; d < end; d++ {
		vals = append(vals, int64(t.Shape[d]))
	}
	return one(tensor.FromInts(tensor.Int64, vals, len(vals)), nil)
}

func checkConstantOfShape(c *compiler, n *node) error {
	a := n.attrs["value"]
	if a == nil {
		n.value = tensor.FromFloats([]float32{0}, 1)
		return nil
	}
	t, err := loader.DecodeAttributeTensor(c.file, a.T)
	if err != nil {
		return c.unsupported(n, "value", "value: %v", err)
	}
	n.value = fromONNX(t)
	if n.value.NumElements() != 1 {
		return c.errAttr(n, "value", "value must hold one element, has shape %v", n.value.Shape)
	}
	return nil
}

func runConstantOfShape(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	dims, err := x.ints(n, in[0], "shape")
	if err != nil {
		return nil, err
	}
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 || d > int64(maxValues) {
			return nil, x.errf(n, "shape %v has a negative or huge dimension", dims)
		}
		shape[i] = int(d)
	}
	if err := checkShape(shape); err != nil {
		return nil, x.errf(n, "%v", err)
	}
	out := x.like(n.value, shape)
	switch {
	case !n.value.IsFloat():
		if iv := n.value.Ints[0]; iv != 0 {
			for i := range out.Ints {
				out.Ints[i] = iv
			}
		}
	case !x.dry:
		fv := n.value.Data[0]
		for i := range out.Data {
			out.Data[i] = fv
		}
	}
	return one(out, nil)
}

func runTranspose(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	rank := len(t.Shape)
	perm := make([]int, rank)
	if p, ok := attrInts(n, "perm"); ok {
		if len(p) != rank {
			return nil, x.errf(n, "perm %v has %d entries for an input of rank %d", p, len(p), rank)
		}
		seen := make([]bool, rank)
		for i, v := range p {
			if v < 0 || v >= int64(rank) || seen[v] {
				return nil, x.errf(n, "perm %v is not a permutation of 0..%d", p, rank-1)
			}
			seen[v] = true
			perm[i] = int(v)
		}
	} else {
		for i := range perm {
			perm[i] = rank - 1 - i
		}
	}
	shape := make([]int, rank)
	for i, p := range perm {
		shape[i] = t.Shape[p]
	}
	out := x.like(t, shape)
	if !x.has(t) {
		out.Ints = nil
		return one(out, nil)
	}
	if t.IsFloat() {
		transposeInto(out.Data, t.Data, t.Shape, perm)
	} else {
		transposeInto(out.Ints, t.Ints, t.Shape, perm)
	}
	return one(out, nil)
}

// transposeInto writes src (of shape) permuted by perm into dst. Axes of
// size 1 are dropped and input axes that stay adjacent are merged first,
// so the loop runs over the fewest axes; when the last axis stays last its
// rows are copied whole.
func transposeInto[E any](dst, src []E, shape, perm []int) {
	total := numel(shape)
	if total == 0 {
		return
	}
	// Drop unit axes.
	var sh, pm []int
	remap := make([]int, len(shape))
	for i, d := range shape {
		remap[i] = -1
		if d != 1 {
			remap[i] = len(sh)
			sh = append(sh, d)
		}
	}
	for _, p := range perm {
		if remap[p] >= 0 {
			pm = append(pm, remap[p])
		}
	}
	// Merge input axes i, i+1 that are adjacent in the output.
	for merged := true; merged; {
		merged = false
		for k := 0; k+1 < len(pm); k++ {
			if pm[k+1] == pm[k]+1 {
				a := pm[k]
				sh[a] *= sh[a+1]
				sh = slices.Delete(sh, a+1, a+2)
				pm = slices.Delete(pm, k+1, k+2)
				for j := range pm {
					if pm[j] > a {
						pm[j]--
					}
				}
				merged = true
				break
			}
		}
	}
	rank := len(sh)
	if rank <= 1 {
		copy(dst[:total], src[:total])
		return
	}
	str := make([]int, rank)
	acc := 1
	for i := rank - 1; i >= 0; i-- {
		str[i] = acc
		acc *= sh[i]
	}
	oshape := make([]int, rank)
	ostr := make([]int, rank) // input stride of each output axis
	for i, p := range pm {
		oshape[i] = sh[p]
		ostr[i] = str[p]
	}
	last := rank - 1
	if ostr[last] != 1 {
		transposeTiles(dst, src, oshape, ostr)
		return
	}
	// The innermost output axis is the input's last: contiguous runs.
	run := oshape[last]
	idx := make([]int, rank)
	s0 := 0
	for o := 0; o < total; o += run {
		if run < 16 {
			d, s := dst[o:o+run], src[s0:s0+run]
			for i := range d {
				d[i] = s[i]
			}
		} else {
			copy(dst[o:o+run], src[s0:s0+run])
		}
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			s0 += ostr[d]
			if idx[d] < oshape[d] {
				break
			}
			s0 -= ostr[d] * oshape[d]
			idx[d] = 0
		}
	}
}

// transposeTiles handles a permutation whose innermost output axis a is
// strided in the input: with b the output axis holding the input's
// contiguous last axis, each (b, a) plane is copied by 16×16 tiles, so
// that both the reads (along b) and the writes (along a) stay in cache.
func transposeTiles[E any](dst, src []E, oshape, ostr []int) {
	rank := len(oshape)
	a := rank - 1
	b := slices.Index(ostr, 1)
	ow := make([]int, rank) // output strides
	acc := 1
	for i := rank - 1; i >= 0; i-- {
		ow[i] = acc
		acc *= oshape[i]
	}
	na, nb, sa, wb := oshape[a], oshape[b], ostr[a], ow[b]
	const tile = 16
	// Odometer over the other axes.
	var others []int
	for i := 0; i < rank; i++ {
		if i != a && i != b {
			others = append(others, i)
		}
	}
	idx := make([]int, len(others))
	so, oo := 0, 0
	for {
		for i0 := 0; i0 < nb; i0 += tile {
			i1 := min(i0+tile, nb)
			for j0 := 0; j0 < na; j0 += tile {
				j1 := min(j0+tile, na)
				for i := i0; i < i1; i++ {
					d := dst[oo+i*wb+j0 : oo+i*wb+j1]
					s := so + i + j0*sa
					for j := range d {
						d[j] = src[s]
						s += sa
					}
				}
			}
		}
		k := len(others) - 1
		for ; k >= 0; k-- {
			d := others[k]
			idx[k]++
			so += ostr[d]
			oo += ow[d]
			if idx[k] < oshape[d] {
				break
			}
			so -= ostr[d] * oshape[d]
			oo -= ow[d] * oshape[d]
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

func runReshape(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	dims, err := x.ints(n, in[1], "shape")
	if err != nil {
		return nil, err
	}
	allowZero := attrInt(n, "allowzero", 0) != 0
	if allowZero && slices.Contains(dims, 0) && slices.Contains(dims, -1) {
		return nil, x.errf(n, "shape %v has both 0 and -1 with allowzero=1", dims)
	}
	shape := make([]int, len(dims))
	infer := -1
	known := 1
	for i, d := range dims {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, x.errf(n, "shape %v has more than one -1", dims)
			}
			infer = i
			continue
		case d == 0 && !allowZero:
			if i >= len(t.Shape) {
				return nil, x.errf(n, "shape %v copies dimension %d (0) but the input has rank %d", dims, i, len(t.Shape))
			}
			shape[i] = t.Shape[i]
		case d < 0 || d > int64(maxValues):
			return nil, x.errf(n, "invalid dimension %d in shape %v", d, dims)
		default:
			shape[i] = int(d)
		}
		known *= shape[i]
		if known > maxValues {
			return nil, x.errf(n, "shape %v is too large", dims)
		}
	}
	total := numel(t.Shape)
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, x.errf(n, "cannot reshape %v (%d values) to %v", t.Shape, total, dims)
		}
		shape[infer] = total / known
	}
	if numel(shape) != total {
		return nil, x.errf(n, "cannot reshape %v (%d values) to %v", t.Shape, total, shape)
	}
	return one(view(t, shape), nil)
}

// castTypes maps ONNX element type codes to the dtypes Cast produces.
// Float types are computed as float32; float16 and bfloat16 values are
// rounded to their precision.
var castTypes = map[int64]tensor.DType{
	1: tensor.Float32, 10: tensor.Float16, 11: tensor.Float64, 16: tensor.BFloat16,
	2: tensor.Uint8, 3: tensor.Int8, 4: tensor.Uint16, 5: tensor.Int16, 6: tensor.Int32, 7: tensor.Int64,
	9: tensor.Bool, 12: tensor.Uint32, 13: tensor.Uint64,
}

func checkCast(c *compiler, n *node) error {
	if !hasAttr(n, "to") {
		return c.errAttr(n, "to", "missing attribute to")
	}
	if _, ok := castTypes[attrInt(n, "to", 0)]; !ok {
		return c.unsupported(n, "to", "attribute to=%d: casting to that type is not supported (strings, complex and float8 are not)", attrInt(n, "to", 0))
	}
	return nil
}

func runCast(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return one(x.castTo(n, in[0], castTypes[attrInt(n, "to", 0)]))
}

// wrapInt truncates v to the width of integer dtype dt, as C and NumPy
// conversions do.
func wrapInt(v int64, dt tensor.DType) int64 {
	switch dt {
	case tensor.Int32:
		return int64(int32(v))
	case tensor.Int16:
		return int64(int16(v))
	case tensor.Int8:
		return int64(int8(v))
	case tensor.Uint32:
		return int64(uint32(v))
	case tensor.Uint16:
		return int64(uint16(v))
	case tensor.Uint8:
		return int64(uint8(v))
	}
	return v
}

// castTo converts t to dtype to (float dtypes computed as float32).
func (x *exec) castTo(n *node, t *tensor.Tensor, to tensor.DType) (*tensor.Tensor, error) {
	if to.IsFloat() {
		out := x.newFloat(t.Shape)
		if x.dry {
			return out, nil
		}
		if t.IsFloat() {
			copy(out.Data, t.Data)
		} else {
			for i, v := range t.Ints {
				out.Data[i] = float32(v)
			}
		}
		switch to {
		case tensor.Float16:
			for i, v := range out.Data {
				out.Data[i] = tensor.HalfToFloat32(tensor.Float32ToHalf(v))
			}
		case tensor.BFloat16:
			for i, v := range out.Data {
				out.Data[i] = tensor.BFloat16ToFloat32(tensor.Float32ToBFloat16(v))
			}
		}
		return out, nil
	}
	if !x.has(t) {
		return &tensor.Tensor{Shape: t.Shape, DType: to}, nil
	}
	out := newInts(to, t.Shape)
	if t.IsFloat() {
		for i, v := range t.Data {
			switch {
			case to == tensor.Bool:
				if v != 0 {
					out.Ints[i] = 1
				}
			case math.IsNaN(float64(v)) || math.IsInf(float64(v), 0):
				return nil, x.errf(n, "%v cast to %s", v, to)
			default:
				out.Ints[i] = wrapInt(int64(v), to)
			}
		}
		return out, nil
	}
	for i, v := range t.Ints {
		if to == tensor.Bool {
			if v != 0 {
				out.Ints[i] = 1
			}
		} else {
			out.Ints[i] = wrapInt(v, to)
		}
	}
	return out, nil
}

func runCastLike(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	to := in[1].DType
	if in[1].IsFloat() {
		to = tensor.Float32
	}
	return one(x.castTo(n, in[0], to))
}

func runFlatten(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	rank := len(t.Shape)
	a := attrInt(n, "axis", 1)
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a > int64(rank) {
		return nil, x.errf(n, "axis %d is out of range for rank %d", attrInt(n, "axis", 1), rank)
	}
	outer := numel(t.Shape[:a])
	return one(view(t, []int{outer, numel(t.Shape[a:])}), nil)
}

// shapeInput reads a shape given as an int64 input (Expand, Tile's
// repeats, ...) and checks that what it makes stays within maxValues.
func (x *exec) shapeInput(n *node, t *tensor.Tensor, what string) ([]int, error) {
	dims, err := x.ints(n, t, what)
	if err != nil {
		return nil, err
	}
	s := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 || d > int64(maxValues) {
			return nil, x.errf(n, "%s %v has a negative or huge value", what, dims)
		}
		s[i] = int(d)
	}
	return s, nil
}

func runExpand(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	s, err := x.shapeInput(n, in[1], "shape")
	if err != nil {
		return nil, err
	}
	shape, ok := broadcastShape(t.Shape, s)
	if !ok {
		return nil, x.errf(n, "input %v does not broadcast to shape %v", t.Shape, s)
	}
	if err := checkShape(shape); err != nil {
		return nil, x.errf(n, "%v", err)
	}
	return one(x.expand(t, t.Shape, shape), nil)
}

// expand broadcasts t, viewed with shape from (same values), to shape to.
func (x *exec) expand(t *tensor.Tensor, from, to []int) *tensor.Tensor {
	out := x.like(t, to)
	if !x.has(t) {
		out.Ints = nil
		return out
	}
	if t.IsFloat() {
		broadcastInto(out.Data, t.Data, from, to)
	} else {
		broadcastInto(out.Ints, t.Ints, from, to)
	}
	return out
}

// broadcastInto writes src (of shape from) broadcast to shape to into dst,
// by runs: copies where the input is contiguous, fills where it stretches.
func broadcastInto[E any](dst, src []E, from, to []int) {
	broadcastRuns(to, from, to, func(o, ia, _, sa, _, m int) {
		if sa == 1 {
			copy(dst[o:o+m], src[ia:ia+m])
			return
		}
		v := src[ia]
		d := dst[o : o+m]
		for i := range d {
			d[i] = v
		}
	})
}

// runTile: output axis i of size r·d reads input axis i cyclically, which
// is the input viewed as (1, d0, 1, d1, ...) expanded to (r0, d0, r1, d1,
// ...) in row-major order.
func runTile(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	reps, err := x.shapeInput(n, in[1], "repeats")
	if err != nil {
		return nil, err
	}
	if len(reps) != len(t.Shape) {
		return nil, x.errf(n, "repeats has %d values for an input of rank %d", len(reps), len(t.Shape))
	}
	shape := make([]int, len(reps))
	from := make([]int, 0, 2*len(reps))
	to := make([]int, 0, 2*len(reps))
	for i, r := range reps {
		shape[i] = r * t.Shape[i]
		from = append(from, 1, t.Shape[i])
		to = append(to, r, t.Shape[i])
	}
	if err := checkShape(shape); err != nil {
		return nil, x.errf(n, "%v", err)
	}
	out := x.expand(t, from, to)
	out.Shape = shape
	return one(out, nil)
}

func runSize(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return one(tensor.FromInts(tensor.Int64, []int64{int64(numel(in[0].Shape))}), nil)
}

// runRange: start, start+delta, ... up to limit (excluded), in the inputs'
// type; the count is max(ceil((limit-start)/delta), 0).
func runRange(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	for i, what := range []string{"start", "limit", "delta"} {
		if numel(in[i].Shape) != 1 || len(in[i].Shape) > 1 {
			return nil, x.errf(n, "%s must be a scalar, has shape %v", what, in[i].Shape)
		}
		if !sameType(in[i], in[0]) {
			return nil, x.errf(n, "%s is %s, start is %s: want one type", what, typeName(in[i]), typeName(in[0]))
		}
	}
	if !known(in[0]) || !known(in[1]) || !known(in[2]) {
		return nil, errUnknown // the length depends on values computed from floats
	}
	if in[0].IsFloat() {
		start, limit, delta := float64(in[0].Data[0]), float64(in[1].Data[0]), float64(in[2].Data[0])
		if delta == 0 || math.IsNaN(start+limit+delta) || math.IsInf(start+limit+delta, 0) {
			return nil, x.errf(n, "range(%g, %g, %g) is not finite", start, limit, delta)
		}
		c := max(math.Ceil((limit-start)/delta), 0)
		if c > float64(maxValues) {
			return nil, x.errf(n, "range(%g, %g, %g) has more than %d values", start, limit, delta, maxValues)
		}
		out := x.newFloat([]int{int(c)})
		if !x.dry {
			// In float32, as the ONNX reference computes it.
			s, d := float32(start), float32(delta)
			for i := range out.Data {
				out.Data[i] = s + float32(i)*d
			}
		}
		return one(out, nil)
	}
	start, limit, delta := in[0].Ints[0], in[1].Ints[0], in[2].Ints[0]
	if delta == 0 {
		return nil, x.errf(n, "delta is 0")
	}
	c := int64(0)
	if delta > 0 && limit > start {
		c = (limit - start + delta - 1) / delta
	} else if delta < 0 && limit < start {
		c = (start - limit - delta - 1) / -delta
	}
	if c > int64(maxValues) {
		return nil, x.errf(n, "range(%d, %d, %d) has more than %d values", start, limit, delta, maxValues)
	}
	out := newInts(in[0].DType, []int{int(c)})
	for i := range out.Ints {
		out.Ints[i] = start + int64(i)*delta
	}
	return one(out, nil)
}

// known reports whether t's values are at hand (a constant, a computed
// integer, or any value outside the dry pass).
func known(t *tensor.Tensor) bool {
	if t.IsFloat() {
		return t.Data != nil
	}
	return t.Ints != nil
}

func checkDropout(c *compiler, n *node) error {
	if n.opset < 12 && len(n.in) > 1 {
		return c.errf(n, "opset %d Dropout takes one input, has %d", n.opset, len(n.in))
	}
	return nil
}

// runDropout is inference-mode dropout: the identity, and a mask of ones.
func runDropout(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	if len(in) > 2 && in[2] != nil {
		mode, ok, err := x.scalar(n, in[2], "training_mode")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errUnknown
		}
		if mode != 0 {
			// Training mode drops at random, unless the ratio is 0 (the
			// default is 0.5).
			ratio, known := 0.5, true
			if len(in) > 1 && in[1] != nil {
				if ratio, known, err = x.scalar(n, in[1], "ratio"); err != nil {
					return nil, err
				}
			}
			if !known {
				return nil, errUnknown
			}
			if ratio != 0 {
				return nil, x.unsupported(n, "training_mode", "training_mode=true with ratio %g: training-mode dropout (random) is not supported", ratio)
			}
		}
	}
	outs := []*tensor.Tensor{t}
	if len(n.out) > 1 {
		var mask *tensor.Tensor
		if n.opset >= 10 {
			mask = newInts(tensor.Bool, t.Shape)
			for i := range mask.Ints {
				mask.Ints[i] = 1
			}
		} else {
			mask = x.like(t, t.Shape)
			if mask.Data != nil {
				for i := range mask.Data {
					mask.Data[i] = 1
				}
			} else if mask.Ints != nil {
				for i := range mask.Ints {
					mask.Ints[i] = 1
				}
			}
		}
		outs = append(outs, mask)
	}
	return outs, nil
}
