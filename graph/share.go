package graph

import (
	"hash/maphash"
	"slices"
	"unsafe"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/engine"
)

// An unrolled export repeats each layer once per time step: the real
// Moving-MNIST model has 4 ConvLSTM cells and 60 cell nodes, its encoder
// convolutions 20 Conv nodes each (after BatchNorm folding, 20 equal copies
// of the folded weights). Nodes whose weights are equal share one packed
// convolution or cell, and one pool of workspaces, so that compiling packs
// each weight once and running keeps one set of buffers per layer.

// shared holds, for one compile, the packed weights by content.
type shared struct {
	precision engine.Precision
	seed      maphash.Seed
	convs     map[uint64][]*sharedConv
	cells     map[uint64][]*sharedCell
}

type sharedConv struct {
	w, b  []float32
	spec  engine.ConvSpec
	conv  *engine.Conv2D
	plans *planCache
}

type sharedCell struct {
	l     convlstm.Layer
	order convlstm.GateOrder
	step  *engine.Cell
	plans *cellPlans
}

// cellPlans are the workspaces of one engine cell, per (batch, height,
// width); concurrent runs each take their own, a worker its own first.
type cellPlans = workerCache[[3]int, *engine.CellPlan]

func (s *shared) hash(w, b []float32, extra string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.Write(floatBytes(w))
	h.WriteByte(0)
	h.Write(floatBytes(b))
	h.WriteString(extra)
	return h.Sum64()
}

func floatBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

// conv returns the packed convolution (and its plan pool) for weights w,
// bias b (nil: none) and spec (pads zero), packing it on first use.
func (s *shared) conv(w, b []float32, spec engine.ConvSpec) (*engine.Conv2D, *planCache, error) {
	if s.convs == nil {
		s.seed, s.convs = maphash.MakeSeed(), map[uint64][]*sharedConv{}
	}
	k := s.hash(w, b, string(unsafe.Slice((*byte)(unsafe.Pointer(&spec)), unsafe.Sizeof(spec))))
	for _, e := range s.convs[k] {
		if e.spec == spec && slices.Equal(e.w, w) && slices.Equal(e.b, b) && (e.b == nil) == (b == nil) {
			return e.conv, e.plans, nil
		}
	}
	c, err := engine.NewConv2D(w, b, spec, engine.ConvOptions{Precision: s.precision})
	if err != nil {
		return nil, nil, err
	}
	e := &sharedConv{w: w, b: b, spec: spec, conv: c, plans: &planCache{}}
	s.convs[k] = append(s.convs[k], e)
	return e.conv, e.plans, nil
}

// cell returns the engine cell (and its plan pool) for a layer in a gate
// order, packing it on first use.
func (s *shared) cell(l convlstm.Layer, order convlstm.GateOrder) (*engine.Cell, *cellPlans, error) {
	if s.cells == nil {
		s.seed, s.cells = maphash.MakeSeed(), map[uint64][]*sharedCell{}
	}
	if s.convs == nil {
		s.convs = map[uint64][]*sharedConv{}
	}
	k := s.hash(l.Weight, l.Bias, string(order)+string(unsafe.Slice((*byte)(unsafe.Pointer(&l.LayerConfig)), unsafe.Sizeof(l.LayerConfig))))
	for _, e := range s.cells[k] {
		if e.l.LayerConfig == l.LayerConfig && e.order == order && slices.Equal(e.l.Weight, l.Weight) && slices.Equal(e.l.Bias, l.Bias) {
			return e.step, e.plans, nil
		}
	}
	step, err := engine.NewCellOptions(l, order, engine.CellOptions{Precision: s.precision})
	if err != nil {
		return nil, nil, err
	}
	e := &sharedCell{l: l, order: order, step: step, plans: &cellPlans{}}
	s.cells[k] = append(s.cells[k], e)
	return e.step, e.plans, nil
}
