package runtime

import (
	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/tensor"

	"fmt"
)

// Stream runs a model one frame at a time, carrying every layer's state from
// one call to the next: the streaming use that ConvLSTM_pytorch refuses
// (it raises NotImplementedError for a given hidden state). Feeding a
// sequence frame by frame gives the same numbers as Forward on the whole
// sequence.
type Stream struct {
	r     *Runner
	plans []*engine.CellPlan
	outs  [][]float32 // each layer's h of the last step, (B, hidden, H, W); nil when chained
	// chained[l]: layer l+1 reads layer l's h where its plan keeps it
	// (engine.CellPlan.StepAfter), so layer l's output is not copied out.
	chained []bool
	zero    bool // the state is known to be zero (no initial state yet)
	b, h, w int
	last    tensor.Tensor
}

// NewStream prepares a stream for frames of shape (batch, C, height, width),
// starting from initial (one entry per layer) or from zeros if nil.
func (r *Runner) NewStream(batch, height, width int, initial []LayerState) (*Stream, error) {
	if batch < 1 || height < 1 || width < 1 {
		return nil, fmt.Errorf("runtime: stream of batch %d and image %d×%d: all must be at least 1", batch, height, width)
	}
	s := &Stream{r: r, b: batch, h: height, w: width}
	for _, c := range r.cells {
		s.plans = append(s.plans, c.NewPlan(batch, height, width, 1, r.threads))
	}
	for i := range s.plans {
		chained := i+1 < len(s.plans) && s.plans[i].ChainsTo(s.plans[i+1])
		s.chained = append(s.chained, chained)
		var out []float32
		if !chained {
			out = make([]float32, batch*r.model.Layers[i].HiddenDim*height*width)
		}
		s.outs = append(s.outs, out)
	}
	if err := s.Reset(initial); err != nil {
		return nil, err
	}
	last := r.model.Layers[len(r.cells)-1].HiddenDim
	s.last = tensor.Tensor{Shape: []int{batch, last, height, width}, Data: s.outs[len(s.outs)-1], DType: "float32"}
	return s, nil
}

// Reset restarts the stream from initial (nil: zeros).
func (s *Stream) Reset(initial []LayerState) error {
	if err := s.r.loadState(s.plans, initial, s.b, s.h, s.w); err != nil {
		return err
	}
	s.zero = initial == nil
	return nil
}

// Step advances every layer by one frame of shape (B, C, H, W) and returns
// the last layer's new hidden state (B, hidden, H, W). The returned tensor
// is reused by the next Step; copy it to keep it.
func (s *Stream) Step(frame *tensor.Tensor) (*tensor.Tensor, error) {
	c := s.r.model.InputDim()
	want := []int{s.b, c, s.h, s.w}
	if !equalShape(frame.Shape, want) || len(frame.Data) != s.b*c*s.h*s.w {
		return nil, fmt.Errorf("runtime: stream frame has shape %s, want %s (batch, channels, height, width)", tensor.ShapeString(frame.Shape), tensor.ShapeString(want))
	}
	in := engine.SeqLayout(frame.Data, s.b, 1, c, s.h*s.w, false)
	for l, p := range s.plans {
		var out engine.Seq
		if !s.chained[l] {
			out = engine.SeqLayout(s.outs[l], s.b, 1, s.r.model.Layers[l].HiddenDim, s.h*s.w, false)
		}
		if l > 0 && s.chained[l-1] {
			p.StepAfter(s.r.pool, s.plans[l-1], out, s.zero)
		} else {
			p.Run(s.r.pool, in, out, 1, s.zero)
		}
		in = out
	}
	s.zero = false
	return &s.last, nil
}

// State returns a copy of every layer's current state.
func (s *Stream) State() []LayerState { return s.r.exportState(s.plans) }
