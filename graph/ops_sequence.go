package graph

import (
	"slices"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// Tensor sequences: what torch.jit.script makes of a Python list that a
// loop appends to (SequenceEmpty before a Loop, SequenceInsert in its
// body, ConcatFromSequence after). A sequence flows through the graph as
// a scalar of dtype seqDType whose one value indexes the pass's list of
// sequences (exec.seqs); sequences are never modified, an insert makes a
// new one. Only ops declared with seqIn accept one as an input.

// seqDType marks a sequence value; it is not a tensor dtype.
const seqDType tensor.DType = "sequence"

type sequence struct {
	elem  tensor.DType // element type (float types as float32)
	items []*tensor.Tensor
}

func init() {
	register(
		&opDef{name: "SequenceEmpty", since: v(11), in: io(0, 0), out: io(1, 1), attrs: []attrSpec{aInt("dtype")}, check: checkSequenceEmpty, run: runSequenceEmpty},
		&opDef{name: "SequenceConstruct", since: v(11), in: io(1, many), out: io(1, 1), run: runSequenceConstruct},
		&opDef{name: "SequenceInsert", since: v(11), in: io(2, 3), out: io(1, 1), seqIn: true, run: runSequenceInsert},
		&opDef{name: "SequenceAt", since: v(11), in: io(2, 2), out: io(1, 1), seqIn: true, run: runSequenceAt},
		&opDef{name: "SequenceErase", since: v(11), in: io(1, 2), out: io(1, 1), seqIn: true, run: runSequenceErase},
		&opDef{name: "SequenceLength", since: v(11), in: io(1, 1), out: io(1, 1), seqIn: true, run: runSequenceLength},
		&opDef{name: "ConcatFromSequence", since: v(11), in: io(1, 1), out: io(1, 1), seqIn: true,
			attrs: []attrSpec{aInt("axis"), aInt("new_axis")}, check: needAttr("axis"), run: runConcatFromSequence},
		&opDef{name: "SplitToSequence", since: v(11), in: io(1, 2), out: io(1, 1), attrs: []attrSpec{aInt("axis"), aInt("keepdims")}, run: runSplitToSequence},
	)
}

// newSeq registers a sequence and returns the value that stands for it.
// Its items are held for the rest of the pass: their buffers must outlive
// the names that carried them.
func (x *exec) newSeq(elem tensor.DType, items []*tensor.Tensor) *tensor.Tensor {
	for _, t := range items {
		x.hold(t)
	}
	x.seqs = append(x.seqs, &sequence{elem: elem, items: items})
	return &tensor.Tensor{Shape: []int{}, DType: seqDType, Ints: []int64{int64(len(x.seqs) - 1)}}
}

// seq returns the sequence a value stands for.
func (x *exec) seq(n *node, t *tensor.Tensor, what string) (*sequence, error) {
	if t == nil || t.DType != seqDType {
		return nil, x.errf(n, "%s must be a sequence, is a %s tensor", what, typeName(t))
	}
	if t.Ints == nil {
		return nil, errUnknown // one of two branches' sequences, in the dry pass
	}
	return x.seqs[t.Ints[0]], nil
}

func elemType(t *tensor.Tensor) tensor.DType {
	if t.IsFloat() {
		return tensor.Float32
	}
	return t.DType
}

func checkSequenceEmpty(c *compiler, n *node) error {
	if dt, ok := castTypes[attrInt(n, "dtype", 1)]; !ok || (dt.IsFloat() && dt != tensor.Float32) {
		return c.unsupported(n, "dtype", "dtype=%d: sequences of that type are not supported", attrInt(n, "dtype", 1))
	}
	return nil
}

func runSequenceEmpty(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return one(x.newSeq(castTypes[attrInt(n, "dtype", 1)], nil), nil)
}

func runSequenceConstruct(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	for i, t := range in {
		if t == nil || !sameType(t, in[0]) {
			return nil, x.errf(n, "input #%d: the elements of a sequence must all be of one type", i)
		}
	}
	return one(x.newSeq(elemType(in[0]), slices.Clone(in)), nil)
}

// position reads an optional position input of a sequence of length n:
// negative counts from the end; end is the default.
func (x *exec) position(n *node, in []*tensor.Tensor, i, length int, insert bool) (int, error) {
	if len(in) <= i || in[i] == nil {
		if insert {
			return length, nil
		}
		return length - 1, nil
	}
	p, err := x.ints(n, in[i], "position")
	if err != nil {
		return 0, err
	}
	if len(p) != 1 {
		return 0, x.errf(n, "position must hold one value, has %d", len(p))
	}
	hi := length - 1
	if insert {
		hi = length
	}
	if p[0] < int64(-length) || p[0] > int64(hi) {
		return 0, x.errf(n, "position %d is out of range for a sequence of %d", p[0], length)
	}
	if p[0] < 0 {
		return int(p[0]) + length, nil
	}
	return int(p[0]), nil
}

func runSequenceInsert(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	s, err := x.seq(n, in[0], "input_sequence")
	if err != nil {
		return nil, err
	}
	t := in[1]
	if t.DType == seqDType || elemType(t) != s.elem {
		return nil, x.errf(n, "inserting a %s tensor into a sequence of %s", typeName(t), s.elem)
	}
	p, err := x.position(n, in, 2, len(s.items), true)
	if err != nil {
		return nil, err
	}
	return one(x.newSeq(s.elem, slices.Insert(slices.Clone(s.items), p, t)), nil)
}

func runSequenceAt(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	s, err := x.seq(n, in[0], "input_sequence")
	if err != nil {
		return nil, err
	}
	if len(s.items) == 0 {
		return nil, x.errf(n, "the sequence is empty")
	}
	p, err := x.position(n, in, 1, len(s.items), false)
	if err != nil {
		return nil, err
	}
	return one(s.items[p], nil)
}

func runSequenceErase(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	s, err := x.seq(n, in[0], "input_sequence")
	if err != nil {
		return nil, err
	}
	if len(s.items) == 0 {
		return nil, x.errf(n, "the sequence is empty")
	}
	p, err := x.position(n, in, 1, len(s.items), false)
	if err != nil {
		return nil, err
	}
	return one(x.newSeq(s.elem, slices.Delete(slices.Clone(s.items), p, p+1)), nil)
}

func runSequenceLength(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	s, err := x.seq(n, in[0], "input_sequence")
	if err != nil {
		return nil, err
	}
	return one(tensor.FromInts(tensor.Int64, []int64{int64(len(s.items))}), nil)
}

// runConcatFromSequence concatenates the elements along axis, or stacks
// them along a new axis when new_axis is 1.
func runConcatFromSequence(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	s, err := x.seq(n, in[0], "input_sequence")
	if err != nil {
		return nil, err
	}
	if len(s.items) == 0 {
		return nil, x.errf(n, "the sequence is empty: its concatenation has no shape")
	}
	first := s.items[0]
	for _, t := range s.items[1:] {
		if len(t.Shape) != len(first.Shape) {
			return nil, x.errf(n, "elements of shapes %v and %v: want one rank", first.Shape, t.Shape)
		}
	}
	if attrInt(n, "new_axis", 0) != 0 {
		for _, t := range s.items[1:] {
			if !slices.Equal(t.Shape, first.Shape) {
				return nil, x.errf(n, "stacking elements of shapes %v and %v", first.Shape, t.Shape)
			}
		}
		return one(x.stack(n, s.items, attrInt(n, "axis", 0), len(s.items)))
	}
	rank := len(first.Shape)
	axis, ok := normAxis(attrInt(n, "axis", 0), rank)
	if !ok {
		return nil, x.errf(n, "axis %d is out of range for rank %d", attrInt(n, "axis", 0), rank)
	}
	shape := slices.Clone(first.Shape)
	shape[axis] = 0
	for _, t := range s.items {
		for d := range t.Shape {
			if d != axis && t.Shape[d] != first.Shape[d] {
				return nil, x.errf(n, "elements of shapes %v and %v may differ only on axis %d", first.Shape, t.Shape, axis)
			}
		}
		shape[axis] += t.Shape[axis]
	}
	out := x.like(first, shape)
	if !x.has(s.items...) {
		out.Ints = nil
		return one(out, nil)
	}
	outer, inner := blocks(shape, axis)
	if first.IsFloat() {
		concatInto(out.Data, s.items, func(t *tensor.Tensor) []float32 { return t.Data }, outer, inner, axis)
	} else {
		concatInto(out.Ints, s.items, func(t *tensor.Tensor) []int64 { return t.Ints }, outer, inner, axis)
	}
	return one(out, nil)
}

// runSplitToSequence splits along axis into chunks of the given sizes
// (a scalar: equal chunks, the last smaller) or, without split, into
// elements of size 1, squeezed unless keepdims is 0.
func runSplitToSequence(x *exec, n *node, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	t := in[0]
	axis, err := x.axisAttr(n, "axis", 0, len(t.Shape))
	if err != nil {
		return nil, err
	}
	dim := t.Shape[axis]
	var sizes []int
	squeeze := false
	if len(in) > 1 && in[1] != nil {
		sp, err := x.ints(n, in[1], "split")
		if err != nil {
			return nil, err
		}
		if len(in[1].Shape) == 0 {
			if sp[0] < 1 {
				return nil, x.errf(n, "split %d: want a positive chunk size", sp[0])
			}
			for rest := dim; rest > 0; rest -= int(sp[0]) {
				sizes = append(sizes, min(int(sp[0]), rest))
			}
		} else {
			sum := 0
			for _, s := range sp {
				if s < 0 || s > int64(dim) {
					return nil, x.errf(n, "split sizes %v: want values in [0, %d]", sp, dim)
				}
				sizes = append(sizes, int(s))
				sum += int(s)
			}
			if sum != dim {
				return nil, x.errf(n, "split sizes %v add up to %d, axis %d has %d", sp, sum, axis, dim)
			}
		}
	} else {
		for i := 0; i < dim; i++ {
			sizes = append(sizes, 1)
		}
		squeeze = attrInt(n, "keepdims", 1) == 0
	}
	outer, inner := blocks(t.Shape, axis)
	items := make([]*tensor.Tensor, len(sizes))
	start := 0
	for k, s := range sizes {
		shape := slices.Clone(t.Shape)
		shape[axis] = s
		item := &tensor.Tensor{Shape: shape, DType: elemType(t)}
		if x.has(t) {
			if t.IsFloat() {
				item.Data = make([]float32, numel(shape))
				copyBlock(item.Data, t.Data, outer, dim*inner, start*inner, s*inner)
			} else {
				item.Ints = make([]int64, numel(shape))
				copyBlock(item.Ints, t.Ints, outer, dim*inner, start*inner, s*inner)
			}
		}
		if squeeze {
			item.Shape = slices.Delete(item.Shape, axis, axis+1)
		}
		items[k] = item
		start += s
	}
	return one(x.newSeq(elemType(t), items), nil)
}
