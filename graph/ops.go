package graph

import (
	"fmt"
	"math"
	"slices"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/ops"
)

// maxValues caps the size of a tensor whose shape comes from the graph's
// own integer computations (ConstantOfShape, Reshape, ...), so a malformed
// model cannot make us allocate without bound. A variable so that the fuzz
// test can lower it.
var maxValues = 1 << 31

func attrInt(n *node, name string, def int64) int64 {
	if a := n.attrs[name]; a != nil && a.I != nil {
		return a.GetI()
	}
	return def
}

func attrInts(n *node, name string) ([]int64, bool) {
	a := n.attrs[name]
	if a == nil {
		return nil, false
	}
	return a.Ints, true
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

// hasData says whether an op computes data for its outputs: always for
// integer values (shape computations), never for floats in the dry pass.
func (r *runner) hasData(v *value) bool { return v.isInt || !r.dry }

// ints reads an integer input (shape, axes, indices...).
func (r *runner) ints(n *node, v *value, what string) ([]int64, error) {
	if v == nil {
		return nil, r.errf(n, "missing %s input", what)
	}
	if !v.isInt {
		return nil, r.errf(n, "%s must be an integer tensor, is float32 %v", what, v.shape)
	}
	if len(v.shape) > 1 {
		return nil, r.errf(n, "%s must be a scalar or 1-D, has shape %v", what, v.shape)
	}
	return v.i, nil
}

func checkShape(shape []int) error {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in %v", shape)
		}
		n *= int64(d)
		if n > int64(maxValues) {
			return fmt.Errorf("shape %v has more than %d values", shape, int64(maxValues))
		}
	}
	return nil
}

// node dispatches one op.
func (r *runner) node(p *program, s *scope, n *node, in []*value) ([]*value, error) {
	one := func(v *value, err error) ([]*value, error) {
		if err != nil {
			return nil, err
		}
		return []*value{v}, nil
	}
	switch n.op {
	case "Identity":
		return []*value{in[0]}, nil
	case "Sigmoid", "Tanh", "Relu":
		return one(r.unary(n, in[0]))
	case "Add", "Sub", "Mul", "Div":
		return one(r.binary(n, in[0], in[1]))
	case "Conv":
		return r.conv(p, n, in)
	case "Concat":
		return one(r.concat(n, in))
	case "Split":
		return r.split(n, in)
	case "Slice":
		return one(r.slice(n, in))
	case "Gather":
		return one(r.gather(n, in[0], in[1]))
	case "Unsqueeze", "Squeeze":
		return one(r.squeeze(n, in))
	case "Shape":
		return one(r.shapeOp(n, in[0]))
	case "ConstantOfShape":
		return one(r.constantOfShape(n, in[0]))
	case "Transpose":
		return one(r.transpose(n, in[0]))
	case "Reshape":
		return one(r.reshape(n, in[0], in[1]))
	case "Cast":
		return one(r.cast(n, in[0]))
	case "Scan":
		return r.scan(p, s, n, in)
	case "LSTMCell":
		return r.cell(p, s, n, in)
	}
	return nil, r.errf(n, "operator %s is not supported", n.op)
}

func (r *runner) unary(n *node, x *value) (*value, error) {
	if x.isInt {
		return nil, r.errf(n, "input %q must be float32, is int64", n.in[0])
	}
	out := &value{shape: x.shape}
	if r.dry {
		return out, nil
	}
	out.f = make([]float32, len(x.f))
	switch n.op {
	case "Sigmoid":
		for i, v := range x.f {
			out.f[i] = ops.SigmoidRef(v)
		}
	case "Tanh":
		for i, v := range x.f {
			out.f[i] = ops.TanhRef(v)
		}
	case "Relu":
		for i, v := range x.f {
			out.f[i] = max(v, 0)
		}
	}
	return out, nil
}

// broadcastShape is numpy's rule: align right, 1 stretches.
func broadcastShape(a, b []int) ([]int, bool) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if j := len(a) - r + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - r + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		default:
			return nil, false
		}
	}
	return out, true
}

// bstrides are the strides of shape s broadcast to out (0 on stretched dims).
func bstrides(s, out []int) []int {
	st := make([]int, len(out))
	acc := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(s) - len(out) + i
		if j >= 0 && s[j] != 1 {
			st[i] = acc
		}
		if j >= 0 {
			acc *= s[j]
		}
	}
	return st
}

// broadcastIndex calls f(o, ia, ib) for every output element.
func broadcastIndex(out, as, bs []int, f func(o, ia, ib int)) {
	sa, sb := bstrides(as, out), bstrides(bs, out)
	total := numel(out)
	if total == 0 {
		return
	}
	idx := make([]int, len(out))
	ia, ib := 0, 0
	for o := 0; o < total; o++ {
		f(o, ia, ib)
		for d := len(out) - 1; d >= 0; d-- {
			idx[d]++
			ia += sa[d]
			ib += sb[d]
			if idx[d] < out[d] {
				break
			}
			ia -= sa[d] * out[d]
			ib -= sb[d] * out[d]
			idx[d] = 0
		}
	}
}

func (r *runner) binary(n *node, a, b *value) (*value, error) {
	if a.isInt != b.isInt {
		return nil, r.errf(n, "inputs %q (%s) and %q (%s) have different element types", n.in[0], typeName(a), n.in[1], typeName(b))
	}
	shape, ok := broadcastShape(a.shape, b.shape)
	if !ok {
		return nil, r.errf(n, "shapes %v (%q) and %v (%q) do not broadcast", a.shape, n.in[0], b.shape, n.in[1])
	}
	out := &value{shape: shape, isInt: a.isInt}
	if !r.hasData(a) {
		return out, nil
	}
	if a.isInt {
		out.i = make([]int64, numel(shape))
		var err error
		broadcastIndex(shape, a.shape, b.shape, func(o, ia, ib int) {
			x, y := a.i[ia], b.i[ib]
			switch n.op {
			case "Add":
				out.i[o] = x + y
			case "Sub":
				out.i[o] = x - y
			case "Mul":
				out.i[o] = x * y
			case "Div":
				if y == 0 {
					err = r.errf(n, "integer division by zero")
					return
				}
				out.i[o] = x / y
			}
		})
		return out, err
	}
	out.f = make([]float32, numel(shape))
	if slices.Equal(a.shape, b.shape) {
		x, y, z := a.f, b.f[:len(a.f)], out.f[:len(a.f)]
		switch n.op {
		case "Add":
			for i := range x {
				z[i] = x[i] + y[i]
			}
		case "Sub":
			for i := range x {
				z[i] = x[i] - y[i]
			}
		case "Mul":
			for i := range x {
				z[i] = x[i] * y[i]
			}
		case "Div":
			for i := range x {
				z[i] = x[i] / y[i]
			}
		}
		return out, nil
	}
	broadcastIndex(shape, a.shape, b.shape, func(o, ia, ib int) {
		x, y := a.f[ia], b.f[ib]
		switch n.op {
		case "Add":
			out.f[o] = x + y
		case "Sub":
			out.f[o] = x - y
		case "Mul":
			out.f[o] = x * y
		case "Div":
			out.f[o] = x / y
		}
	})
	return out, nil
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

func (r *runner) concat(n *node, in []*value) (*value, error) {
	a := n.attrs["axis"]
	if a == nil {
		return nil, r.errf(n, "missing attribute axis")
	}
	first := in[0]
	axis, ok := normAxis(a.GetI(), len(first.shape))
	if !ok {
		return nil, r.errf(n, "axis %d is out of range for rank %d", a.GetI(), len(first.shape))
	}
	shape := slices.Clone(first.shape)
	shape[axis] = 0
	for i, v := range in {
		if v == nil {
			return nil, r.errf(n, "input #%d is empty", i)
		}
		if v.isInt != first.isInt || len(v.shape) != len(first.shape) {
			return nil, r.errf(n, "input %q is %s %v, input %q is %s %v: want the same type and rank", n.in[i], typeName(v), v.shape, n.in[0], typeName(first), first.shape)
		}
		for d := range v.shape {
			if d != axis && v.shape[d] != first.shape[d] {
				return nil, r.errf(n, "input %q has shape %v, input %q %v: they may differ only on axis %d", n.in[i], v.shape, n.in[0], first.shape, axis)
			}
		}
		shape[axis] += v.shape[axis]
	}
	out := &value{shape: shape, isInt: first.isInt}
	if !r.hasData(first) {
		return out, nil
	}
	outer, inner := blocks(shape, axis)
	if first.isInt {
		out.i = concatData(in, func(v *value) []int64 { return v.i }, outer, inner, axis)
	} else {
		out.f = concatData(in, func(v *value) []float32 { return v.f }, outer, inner, axis)
	}
	return out, nil
}

func concatData[E any](in []*value, get func(*value) []E, outer, inner, axis int) []E {
	total := 0
	for _, v := range in {
		total += len(get(v))
	}
	out := make([]E, 0, total)
	for o := 0; o < outer; o++ {
		for _, v := range in {
			w := v.shape[axis] * inner
			out = append(out, get(v)[o*w:(o+1)*w]...)
		}
	}
	return out
}

func (r *runner) split(n *node, in []*value) ([]*value, error) {
	x := in[0]
	axis, ok := normAxis(attrInt(n, "axis", 0), len(x.shape))
	if !ok {
		return nil, r.errf(n, "axis %d is out of range for rank %d", attrInt(n, "axis", 0), len(x.shape))
	}
	dim := x.shape[axis]
	var sizes []int64
	if len(in) > 1 && in[1] != nil {
		s, err := r.ints(n, in[1], "split")
		if err != nil {
			return nil, err
		}
		sizes = s
	} else if s, ok := attrInts(n, "split"); ok {
		sizes = s
	} else {
		k := int64(len(n.out))
		if no := attrInt(n, "num_outputs", 0); no > 0 {
			k = no
		}
		per := (int64(dim) + k - 1) / k // opset 18: the last chunk may be smaller
		rest := int64(dim)
		for i := int64(0); i < k; i++ {
			sizes = append(sizes, min(per, rest))
			rest -= min(per, rest)
		}
		if k > 0 && int64(dim)%k != 0 && attrInt(n, "num_outputs", 0) == 0 {
			return nil, r.errf(n, "axis %d of size %d does not split evenly into %d outputs", axis, dim, k)
		}
	}
	if len(sizes) != len(n.out) {
		return nil, r.errf(n, "%d split sizes for %d outputs", len(sizes), len(n.out))
	}
	sum := int64(0)
	for _, s := range sizes {
		if s < 0 {
			return nil, r.errf(n, "negative split size in %v", sizes)
		}
		sum += s
	}
	if sum != int64(dim) {
		return nil, r.errf(n, "split sizes %v add up to %d, axis %d of input %q has %d", sizes, sum, axis, n.in[0], dim)
	}
	outer, inner := blocks(x.shape, axis)
	outs := make([]*value, len(sizes))
	start := 0
	for k, s := range sizes {
		shape := slices.Clone(x.shape)
		shape[axis] = int(s)
		v := &value{shape: shape, isInt: x.isInt}
		if r.hasData(x) {
			if x.isInt {
				v.i = sliceBlock(x.i, outer, dim*inner, start*inner, int(s)*inner)
			} else {
				v.f = sliceBlock(x.f, outer, dim*inner, start*inner, int(s)*inner)
			}
		}
		outs[k] = v
		start += int(s)
	}
	return outs, nil
}

// sliceBlock copies [off, off+w) of each of outer rows of width stride.
func sliceBlock[E any](src []E, outer, stride, off, w int) []E {
	out := make([]E, 0, outer*w)
	for o := 0; o < outer; o++ {
		out = append(out, src[o*stride+off:o*stride+off+w]...)
	}
	return out
}

func (r *runner) slice(n *node, in []*value) (*value, error) {
	x := in[0]
	rank := len(x.shape)
	var starts, ends, axes, steps []int64
	if n.opset < 10 {
		starts, _ = attrInts(n, "starts")
		ends, _ = attrInts(n, "ends")
		axes, _ = attrInts(n, "axes")
	} else {
		if len(in) < 3 {
			return nil, r.errf(n, "opset %d Slice needs starts and ends inputs", n.opset)
		}
		var err error
		if starts, err = r.ints(n, in[1], "starts"); err != nil {
			return nil, err
		}
		if ends, err = r.ints(n, in[2], "ends"); err != nil {
			return nil, err
		}
		if len(in) > 3 && in[3] != nil {
			if axes, err = r.ints(n, in[3], "axes"); err != nil {
				return nil, err
			}
		}
		if len(in) > 4 && in[4] != nil {
			if steps, err = r.ints(n, in[4], "steps"); err != nil {
				return nil, err
			}
		}
	}
	if len(starts) != len(ends) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		return nil, r.errf(n, "starts %v, ends %v, axes %v and steps %v must have the same length", starts, ends, axes, steps)
	}
	start := make([]int, rank)
	step := make([]int, rank)
	count := slices.Clone(x.shape)
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
			return nil, r.errf(n, "axis %d is out of range for rank %d or repeated", ax, rank)
		}
		seen[a] = true
		st := int64(1)
		if steps != nil {
			st = steps[k]
		}
		if st == 0 {
			return nil, r.errf(n, "step 0 on axis %d", a)
		}
		dim := int64(x.shape[a])
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
	out := &value{shape: count, isInt: x.isInt}
	if !r.hasData(x) {
		return out, nil
	}
	if x.isInt {
		out.i = strided(x.i, x.shape, start, step, count)
	} else {
		out.f = strided(x.f, x.shape, start, step, count)
	}
	return out, nil
}

// strided gathers src[start + i·step] over every axis.
func strided[E any](src []E, shape, start, step, count []int) []E {
	out := make([]E, 0, numel(count))
	rank := len(shape)
	if numel(count) == 0 {
		return out
	}
	if rank == 0 {
		return append(out, src[0])
	}
	str := make([]int, rank)
	acc := 1
	for i := rank - 1; i >= 0; i-- {
		str[i] = acc
		acc *= shape[i]
	}
	var rec func(d, base int)
	rec = func(d, base int) {
		if d == rank-1 {
			o := base + start[d]*str[d]
			if step[d] == 1 {
				out = append(out, src[o:o+count[d]]...)
				return
			}
			for i := 0; i < count[d]; i++ {
				out = append(out, src[o+i*step[d]])
			}
			return
		}
		for i := 0; i < count[d]; i++ {
			rec(d+1, base+(start[d]+i*step[d])*str[d])
		}
	}
	rec(0, 0)
	return out
}

func (r *runner) gather(n *node, x, idx *value) (*value, error) {
	axis, ok := normAxis(attrInt(n, "axis", 0), len(x.shape))
	if !ok {
		return nil, r.errf(n, "axis %d is out of range for rank %d", attrInt(n, "axis", 0), len(x.shape))
	}
	if !idx.isInt {
		return nil, r.errf(n, "indices %q must be integers", n.in[1])
	}
	dim := x.shape[axis]
	shape := append(append(slices.Clone(x.shape[:axis]), idx.shape...), x.shape[axis+1:]...)
	for _, i := range idx.i {
		if i < -int64(dim) || i >= int64(dim) {
			return nil, r.errf(n, "index %d is out of range for axis %d of size %d (input %q %v)", i, axis, dim, n.in[0], x.shape)
		}
	}
	out := &value{shape: shape, isInt: x.isInt}
	if !r.hasData(x) {
		return out, nil
	}
	outer, inner := blocks(x.shape, axis)
	norm := make([]int, len(idx.i))
	for k, i := range idx.i {
		if i < 0 {
			i += int64(dim)
		}
		norm[k] = int(i)
	}
	if x.isInt {
		out.i = gatherData(x.i, outer, dim, inner, norm)
	} else {
		out.f = gatherData(x.f, outer, dim, inner, norm)
	}
	return out, nil
}

func gatherData[E any](src []E, outer, dim, inner int, idx []int) []E {
	out := make([]E, 0, outer*len(idx)*inner)
	for o := 0; o < outer; o++ {
		for _, i := range idx {
			b := (o*dim + i) * inner
			out = append(out, src[b:b+inner]...)
		}
	}
	return out
}

// squeeze handles Squeeze and Unsqueeze (axes as an attribute up to opset
// 12, as an input from 13). The data is shared: values are never modified
// in place.
func (r *runner) squeeze(n *node, in []*value) (*value, error) {
	x := in[0]
	var axes []int64
	have := false
	if len(in) > 1 && in[1] != nil {
		a, err := r.ints(n, in[1], "axes")
		if err != nil {
			return nil, err
		}
		axes, have = a, true
	} else if a, ok := attrInts(n, "axes"); ok {
		axes, have = a, true
	}
	out := &value{isInt: x.isInt, f: x.f, i: x.i}
	if n.op == "Unsqueeze" {
		if !have {
			return nil, r.errf(n, "no axes (attribute up to opset 12, input from 13)")
		}
		rank := len(x.shape) + len(axes)
		ins := make([]bool, rank)
		for _, a := range axes {
			ax, ok := normAxis(a, rank)
			if !ok || ins[ax] {
				return nil, r.errf(n, "axes %v are out of range for output rank %d or repeated", axes, rank)
			}
			ins[ax] = true
		}
		j := 0
		for d := 0; d < rank; d++ {
			if ins[d] {
				out.shape = append(out.shape, 1)
			} else {
				out.shape = append(out.shape, x.shape[j])
				j++
			}
		}
		if out.shape == nil {
			out.shape = []int{}
		}
		return out, nil
	}
	drop := make([]bool, len(x.shape))
	if have {
		for _, a := range axes {
			ax, ok := normAxis(a, len(x.shape))
			if !ok {
				return nil, r.errf(n, "axis %d is out of range for rank %d", a, len(x.shape))
			}
			if x.shape[ax] != 1 {
				return nil, r.errf(n, "cannot squeeze axis %d of size %d (input %q %v)", ax, x.shape[ax], n.in[0], x.shape)
			}
			drop[ax] = true
		}
	} else {
		for d, s := range x.shape {
			drop[d] = s == 1
		}
	}
	out.shape = []int{}
	for d, s := range x.shape {
		if !drop[d] {
			out.shape = append(out.shape, s)
		}
	}
	return out, nil
}

func (r *runner) shapeOp(n *node, x *value) (*value, error) {
	rank := int64(len(x.shape))
	start, end := attrInt(n, "start", 0), attrInt(n, "end", rank)
	if start < 0 {
		start += rank
	}
	if end < 0 {
		end += rank
	}
	start, end = min(max(start, 0), rank), min(max(end, 0), rank)
	out := &value{isInt: true, i: []int64{}}
	for d := start; d < end; d++ {
		out.i = append(out.i, int64(x.shape[d]))
	}
	out.shape = []int{len(out.i)}
	return out, nil
}

func (r *runner) constantOfShape(n *node, s *value) (*value, error) {
	dims, err := r.ints(n, s, "shape")
	if err != nil {
		return nil, err
	}
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 || d > int64(maxValues) {
			return nil, r.errf(n, "shape %v has a negative or huge dimension", dims)
		}
		shape[i] = int(d)
	}
	if err := checkShape(shape); err != nil {
		return nil, r.errf(n, "%v", err)
	}
	out := &value{shape: shape}
	var fv float32
	var iv int64
	if a := n.attrs["value"]; a != nil && a.T != nil {
		t, err := decodeAttr(r.g.File, a.T)
		if err != nil {
			return nil, r.errf(n, "value: %v", err)
		}
		if t.size() != 1 {
			return nil, r.errf(n, "value must hold one element, has shape %v", t.shape)
		}
		out.isInt = t.isInt
		if t.isInt {
			iv = t.i[0]
		} else {
			fv = t.f[0]
		}
	}
	if !r.hasData(out) {
		return out, nil
	}
	if out.isInt {
		out.i = make([]int64, numel(shape))
		for i := range out.i {
			out.i[i] = iv
		}
	} else {
		out.f = make([]float32, numel(shape))
		if fv != 0 {
			for i := range out.f {
				out.f[i] = fv
			}
		}
	}
	return out, nil
}

func (r *runner) transpose(n *node, x *value) (*value, error) {
	rank := len(x.shape)
	perm := make([]int, rank)
	if p, ok := attrInts(n, "perm"); ok {
		if len(p) != rank {
			return nil, r.errf(n, "perm %v has %d entries for an input of rank %d", p, len(p), rank)
		}
		seen := make([]bool, rank)
		for i, v := range p {
			if v < 0 || v >= int64(rank) || seen[v] {
				return nil, r.errf(n, "perm %v is not a permutation of 0..%d", p, rank-1)
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
		shape[i] = x.shape[p]
	}
	out := &value{shape: shape, isInt: x.isInt}
	if !r.hasData(x) {
		return out, nil
	}
	if x.isInt {
		out.i = transposeData(x.i, x.shape, perm)
	} else {
		out.f = transposeData(x.f, x.shape, perm)
	}
	return out, nil
}

func transposeData[E any](src []E, shape, perm []int) []E {
	rank := len(shape)
	total := numel(shape)
	out := make([]E, total)
	if total == 0 || rank == 0 {
		copy(out, src)
		return out
	}
	str := make([]int, rank)
	acc := 1
	for i := rank - 1; i >= 0; i-- {
		str[i] = acc
		acc *= shape[i]
	}
	oshape := make([]int, rank)
	ostr := make([]int, rank) // input stride of each output axis
	for i, p := range perm {
		oshape[i] = shape[p]
		ostr[i] = str[p]
	}
	// Copy whole rows when the last axis stays last.
	inner := 1
	if perm[rank-1] == rank-1 {
		inner = shape[rank-1]
	}
	idx := make([]int, rank)
	last := rank - 1
	if inner > 1 {
		last = rank - 2
	}
	src0 := 0
	for o := 0; o < total; o += inner {
		copy(out[o:o+inner], src[src0:src0+inner])
		for d := last; d >= 0; d-- {
			idx[d]++
			src0 += ostr[d]
			if idx[d] < oshape[d] {
				break
			}
			src0 -= ostr[d] * oshape[d]
			idx[d] = 0
		}
	}
	return out
}

func (r *runner) reshape(n *node, x, s *value) (*value, error) {
	dims, err := r.ints(n, s, "shape")
	if err != nil {
		return nil, err
	}
	allowZero := attrInt(n, "allowzero", 0) != 0
	shape := make([]int, len(dims))
	infer := -1
	known := 1
	for i, d := range dims {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, r.errf(n, "shape %v has more than one -1", dims)
			}
			infer = i
			continue
		case d == 0 && !allowZero:
			if i >= len(x.shape) {
				return nil, r.errf(n, "shape %v copies dimension %d (0) but the input has rank %d", dims, i, len(x.shape))
			}
			shape[i] = x.shape[i]
		case d < 0 || d > int64(maxValues):
			return nil, r.errf(n, "invalid dimension %d in shape %v", d, dims)
		default:
			shape[i] = int(d)
		}
		known *= shape[i]
		if known > maxValues {
			return nil, r.errf(n, "shape %v is too large", dims)
		}
	}
	total := x.size()
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, r.errf(n, "cannot reshape %v (%d values) to %v", x.shape, total, dims)
		}
		shape[infer] = total / known
	}
	if numel(shape) != total {
		return nil, r.errf(n, "cannot reshape %v (%d values) to %v", x.shape, total, shape)
	}
	return &value{shape: shape, isInt: x.isInt, f: x.f, i: x.i}, nil
}

func (r *runner) cast(n *node, x *value) (*value, error) {
	to := attrInt(n, "to", 0)
	out := &value{shape: x.shape}
	switch to {
	case 1, 10, 11, 16: // float, float16, double, bfloat16: all computed as float32
		if !x.isInt {
			out.f = x.f
			return out, nil
		}
		out.f = make([]float32, len(x.i))
		for i, v := range x.i {
			out.f[i] = float32(v)
		}
	case 2, 3, 4, 5, 6, 7, 9, 12, 13:
		out.isInt = true
		if x.isInt {
			out.i = x.i
			if to == 9 {
				out.i = make([]int64, len(x.i))
				for i, v := range x.i {
					if v != 0 {
						out.i[i] = 1
					}
				}
			}
			return out, nil
		}
		if r.dry {
			return nil, r.errf(n, "casting a computed float tensor to integers is not supported (its values are unknown before running)")
		}
		out.i = make([]int64, len(x.f))
		for i, v := range x.f {
			if math.IsNaN(float64(v)) {
				return nil, r.errf(n, "NaN cast to an integer")
			}
			out.i[i] = int64(v)
		}
	default:
		return nil, r.errf(n, "cast to type %d is not supported", to)
	}
	return out, nil
}

// scan runs a Scan node (opset 9+): N state variables then M scan inputs;
// the body maps (states, slices) to (new states, K per-step outputs).
func (r *runner) scan(p *program, s *scope, n *node, in []*value) ([]*value, error) {
	if n.opset < 9 {
		return nil, r.errf(n, "Scan before opset 9 (with a sequence_lens input) is not supported")
	}
	body := n.body
	m := int(attrInt(n, "num_scan_inputs", -1))
	if m < 1 || m > len(in) {
		return nil, r.errf(n, "num_scan_inputs %d: want 1 to %d", m, len(in))
	}
	ns := len(in) - m
	if len(body.inputs) != len(in) {
		return nil, r.errf(n, "body takes %d inputs, the node passes %d", len(body.inputs), len(in))
	}
	k := len(body.outputs) - ns
	if k < 0 || len(n.out) != len(body.outputs) {
		return nil, r.errf(n, "body has %d outputs, the node %d (with %d states)", len(body.outputs), len(n.out), ns)
	}
	inAxes := make([]int, m)
	if a, ok := attrInts(n, "scan_input_axes"); ok {
		if len(a) != m {
			return nil, r.errf(n, "scan_input_axes %v: want %d values", a, m)
		}
		for i, v := range a {
			ax, ok := normAxis(v, len(in[ns+i].shape))
			if !ok {
				return nil, r.errf(n, "scan_input_axes %v: axis %d is out of range for input %q %v", a, v, n.in[ns+i], in[ns+i].shape)
			}
			inAxes[i] = ax
		}
	}
	for _, name := range []string{"scan_input_directions", "scan_output_directions"} {
		if d, ok := attrInts(n, name); ok {
			for _, v := range d {
				if v != 0 {
					return nil, r.errf(n, "%s %v: only forward (0) scans are supported", name, d)
				}
			}
		}
	}
	steps := -1
	for i := 0; i < m; i++ {
		x := in[ns+i]
		if x == nil || len(x.shape) == 0 {
			return nil, r.errf(n, "scan input %q must have rank ≥ 1", n.in[ns+i])
		}
		t := x.shape[inAxes[i]]
		if steps >= 0 && t != steps {
			return nil, r.errf(n, "scan inputs have %d and %d steps", steps, t)
		}
		steps = t
	}
	outAxes := make([]int64, k)
	if a, ok := attrInts(n, "scan_output_axes"); ok {
		if len(a) != k {
			return nil, r.errf(n, "scan_output_axes %v: want %d values", a, k)
		}
		copy(outAxes, a)
	}
	states := slices.Clone(in[:ns])
	for i, st := range states {
		if st == nil {
			return nil, r.errf(n, "state input #%d is empty", i)
		}
	}
	iters := steps
	if r.dry {
		iters = 1 // shapes only: one pass through the body gives them
	}
	perStep := make([][]*value, k)
	var stepShapes [][]int
	for t := 0; t < iters; t++ {
		bs := &scope{vals: map[string]*value{}, parent: s}
		for i := 0; i < ns; i++ {
			bs.vals[body.inputs[i]] = states[i]
		}
		for i := 0; i < m; i++ {
			x := in[ns+i]
			ax := inAxes[i]
			shape := append(slices.Clone(x.shape[:ax]), x.shape[ax+1:]...)
			v := &value{shape: shape, isInt: x.isInt}
			if r.hasData(x) {
				outer, inner := blocks(x.shape, ax)
				idx := []int{min(t, max(x.shape[ax]-1, 0))}
				if x.shape[ax] > 0 {
					if x.isInt {
						v.i = gatherData(x.i, outer, x.shape[ax], inner, idx)
					} else {
						v.f = gatherData(x.f, outer, x.shape[ax], inner, idx)
					}
				}
			}
			bs.vals[body.inputs[ns+i]] = v
		}
		res, err := r.run(body, bs)
		if err != nil {
			return nil, err
		}
		for i := 0; i < ns; i++ {
			if !slices.Equal(res[i].shape, states[i].shape) || res[i].isInt != states[i].isInt {
				return nil, r.errf(n, "body changes state %q from %s %v to %s %v", body.inputs[i], typeName(states[i]), states[i].shape, typeName(res[i]), res[i].shape)
			}
			states[i] = res[i]
		}
		if stepShapes == nil {
			for j := 0; j < k; j++ {
				stepShapes = append(stepShapes, res[ns+j].shape)
			}
		}
		for j := 0; j < k; j++ {
			if !slices.Equal(res[ns+j].shape, stepShapes[j]) {
				return nil, r.errf(n, "scan output %q changes shape between steps", body.outputs[ns+j])
			}
			perStep[j] = append(perStep[j], res[ns+j])
		}
	}
	outs := append([]*value{}, states...)
	for j := 0; j < k; j++ {
		var sshape []int
		isInt := false
		if stepShapes != nil {
			sshape = stepShapes[j]
			isInt = perStep[j][0].isInt
		} else {
			return nil, r.errf(n, "zero-length scans are not supported (output shapes unknown)")
		}
		ax, ok := normAxis(outAxes[j], len(sshape)+1)
		if !ok {
			return nil, r.errf(n, "scan_output_axes %d is out of range for rank %d", outAxes[j], len(sshape)+1)
		}
		shape := append(append(slices.Clone(sshape[:ax]), steps), sshape[ax:]...)
		v := &value{shape: shape, isInt: isInt}
		if !r.dry {
			// Stacking along ax is a concat of the steps, each viewed with a
			// unit dimension at ax.
			parts := make([]*value, len(perStep[j]))
			for t, pv := range perStep[j] {
				u := *pv
				u.shape = append(append(slices.Clone(sshape[:ax]), 1), sshape[ax:]...)
				parts[t] = &u
			}
			outer, inner := blocks(shape, ax)
			if isInt {
				v.i = concatData(parts, func(x *value) []int64 { return x.i }, outer, inner, ax)
			} else {
				v.f = concatData(parts, func(x *value) []float32 { return x.f }, outer, inner, ax)
			}
		}
		outs = append(outs, v)
	}
	return outs, nil
}

func decodeAttr(file string, tp *onnxpb.TensorProto) (*value, error) {
	t, err := loader.DecodeAttributeTensor(file, tp)
	if err != nil {
		return nil, err
	}
	return fromONNX(t), nil
}
