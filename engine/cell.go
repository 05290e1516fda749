package engine

import (
	"fmt"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/ops"
)

// This file is the ConvLSTM cell step that both the native runtime and the
// ONNX interpreter's fused cells run. PyTorch's ConvLSTM_pytorch computes,
// per layer and time step,
//
//	gates = conv(cat(x[t], h), W) + bias          (4·hidden channels)
//	i, f, o, g = σ, σ, σ, tanh of the four blocks
//	c = f*c + i*g;  h = o*tanh(c)
//
// A Cell holds one layer's weights packed for the algorithm chosen for it
// (algo.go); a CellPlan holds the workspaces for one batch and image size
// and runs the time loop (Run) or a single step (Step).

// canonical is the gate order the kernels use; weights are permuted into it
// once, in NewCell.
const canonical = convlstm.GatesIFOG

// Cell is one ConvLSTM layer's convolution, packed. With direct
// convolutions the sum over cat(x, h) is split into its input half, which
// does not depend on h and is computed for a whole chunk of time steps at
// once, and its recurrent half, added per step. A layer with enough hidden
// channels and kernel sides of 3 or 5 instead runs conv(cat(x, h)) as one
// Winograd convolution per step (one GEMM over all channels, one output
// transform), which is less work than computing the input half ahead.
type Cell struct {
	Cfg   convlstm.LayerConfig
	convX *Conv2D // input half, direct
	convH *Conv2D // recurrent half, direct
	// winoX is the input half as Winograd, for a winoXH layer's first
	// step from a zero state when its 3×3 input has enough channels;
	// winoXH the whole conv over cat(x, h); nil when not chosen.
	winoX, winoXH *Conv2D
	bias          []float32 // canonical order; nil without bias
}

// NewCell packs a layer whose weight rows are in the given gate order.
// direct forbids Winograd.
func NewCell(l convlstm.Layer, order convlstm.GateOrder, direct bool) (*Cell, error) {
	return NewCellOptions(l, order, CellOptions{Direct: direct})
}

// CellOptions adjust NewCellOptions.
type CellOptions struct {
	// Direct forbids Winograd.
	Direct bool
	// Precision of the cell's convolutions (ConvOptions.Precision); the
	// gates and the state stay float32.
	Precision Precision
}

// NewCellOptions is NewCell with options.
func NewCellOptions(l convlstm.Layer, order convlstm.GateOrder, o CellOptions) (*Cell, error) {
	direct, prec := o.Direct, o.Precision
	in, hd, kh, kw := l.InputDim, l.HiddenDim, l.KernelH, l.KernelW
	if in < 1 || hd < 1 || kh%2 == 0 || kw%2 == 0 || len(l.Weight) != 4*hd*(in+hd)*kh*kw || l.HasBias && len(l.Bias) != 4*hd {
		return nil, fmt.Errorf("engine: cell %d→%d, kernel %d×%d: inconsistent weights (%d values, bias %d)", in, hd, kh, kw, len(l.Weight), len(l.Bias))
	}
	if _, err := convlstm.ParseGateOrder(string(order)); err != nil {
		return nil, err
	}
	taps := kh * kw
	cols := (in + hd) * taps
	wx := make([]float32, 4*hd*in*taps)
	wh := make([]float32, 4*hd*hd*taps)
	wxh := make([]float32, 4*hd*cols)
	var bias []float32
	if l.HasBias {
		bias = make([]float32, 4*hd)
	}
	for g := 0; g < 4; g++ {
		src := order.Block(canonical[g])
		for ch := 0; ch < hd; ch++ {
			dr, sr := g*hd+ch, src*hd+ch
			row := l.Weight[sr*cols : (sr+1)*cols]
			copy(wxh[dr*cols:(dr+1)*cols], row)
			copy(wx[dr*in*taps:(dr+1)*in*taps], row[:in*taps])
			copy(wh[dr*hd*taps:(dr+1)*hd*taps], row[in*taps:])
			if bias != nil {
				bias[dr] = l.Bias[sr]
			}
		}
	}
	pad := func(c int) ConvSpec {
		return ConvSpec{M: 4 * hd, C: c, KH: kh, KW: kw, PadT: kh / 2, PadL: kw / 2, PadB: kh / 2, PadR: kw / 2}
	}
	cell := &Cell{Cfg: l.LayerConfig, bias: bias}
	var err error
	// The convolutions carry no bias: the step adds it once, in whichever
	// convolution writes the gates first.
	if cell.convX, err = NewConv2D(wx, nil, pad(in), ConvOptions{Direct: true, Precision: prec}); err != nil {
		return nil, err
	}
	if cell.convH, err = NewConv2D(wh, nil, pad(hd), ConvOptions{Direct: true, Precision: prec}); err != nil {
		return nil, err
	}
	if xh, _ := NewConv2D(wxh, nil, pad(in+hd), ConvOptions{Direct: direct, Channels: hd, Parts: []int{in, hd}, Precision: prec}); xh != nil && xh.Algo == Winograd {
		cell.winoXH = xh
		if x, _ := NewConv2D(wx, nil, pad(in), ConvOptions{Direct: direct, Precision: prec}); x != nil && x.Algo == Winograd && kh == 3 && kw == 3 {
			cell.winoX = x
		}
	}
	return cell, nil
}

// Precision reports the precision the cell's convolutions were packed for.
func (c *Cell) Precision() Precision { return c.convX.Precision() }

// Algo reports how the cell's step convolution runs.
func (c *Cell) Algo() Algo {
	if c.winoXH != nil {
		return Winograd
	}
	return Direct
}

// gxBudget bounds the input-half gate buffer (floats) of one layer; the time
// loop is cut into chunks of at most that many frames' gates.
const gxBudget = 16 << 20

// CellPlan holds one layer's workspaces for a batch and image size: the
// padded input frames of a time chunk and their gates, the padded hidden
// state and the cell state.
//
// Padded layout: a frame is HP×WP (the image with k//2 zeros around it,
// plus any rows Winograd blocks read past them); buffers are
// channel-major, [channel][frame][HP][WP]. A gate row's column
// j = frame·S + y·WP + x is the pixel (y, x) of that frame; the columns of
// padding positions are computed and never read.
type CellPlan struct {
	c            *Cell
	B, H, W      int
	L            Layout // of one step: B frames
	tc           int    // frames of time per chunk
	ph, pw       int
	xpad, gx     []float32
	hpad, cstate []float32
	ldg          int // row stride of gx = tc·B·S

	planX     *ConvPlan // input half over a chunk, direct
	planWinoX *ConvPlan // input half of one step, Winograd
	planH     *ConvPlan // recurrent half, direct
	planXH    *ConvPlan // cat(x, h), Winograd
	srcs      [2][]float32
	gates     gateTask
	stepC     []float32 // Step's c, updated in place (nil in Run)
}

// NewPlan makes workspaces for batch b of h×w images and time chunks of up
// to maxT steps.
func (c *Cell) NewPlan(b, h, w, maxT, threads int) *CellPlan {
	cfg := c.Cfg
	hd, in := cfg.HiddenDim, cfg.InputDim
	p := &CellPlan{c: c, B: b, H: h, W: w, ph: cfg.KernelH / 2, pw: cfg.KernelW / 2}
	widest := c.convX
	if c.winoXH != nil {
		widest = c.winoXH
	}
	p.L, _ = widest.Layout(b, h, w) // k//2 padding: the output is h×w, never too small
	p.tc = min(maxT, p.maxChunk())
	p.ldg = p.tc * b * p.L.S
	slack := widest.Slack()
	p.xpad = make([]float32, in*p.ldg+slack)
	p.gx = make([]float32, 4*hd*p.ldg)
	p.hpad = make([]float32, hd*b*p.L.S+slack)
	p.cstate = make([]float32, hd*b*h*w)
	chunk := p.L
	chunk.Frames = p.tc * b
	p.planX = c.convX.NewPlan(chunk, []int{p.ldg}, threads)
	p.planH = c.convH.NewPlan(p.L, []int{b * p.L.S}, threads)
	if c.winoXH != nil {
		p.planXH = c.winoXH.NewPlan(p.L, []int{p.ldg, b * p.L.S}, threads)
	}
	if c.winoX != nil {
		p.planWinoX = c.winoX.NewPlan(p.L, []int{p.ldg}, threads)
	}
	return p
}

// maxChunk is the most time steps whose input-half gates fit the budget.
func (p *CellPlan) maxChunk() int {
	return max(1, gxBudget/(4*p.c.Cfg.HiddenDim*p.B*p.L.S))
}

// Fits reports whether the plan serves batch b of h×w images for chunks of
// t steps (min(t, the chunk budget)).
func (p *CellPlan) Fits(b, h, w, t int) bool {
	return p.B == b && p.H == h && p.W == w && p.tc >= min(t, p.maxChunk())
}

// Seq views a sequence of frames (T, B, C, H, W) stored with any time and
// batch strides: the plane of (t, b, channel c) starts at
// t·TStride + b·BStride + c·Plane. Batch-first and time-first tensors are
// both Seqs, so layers read and write the caller's layout directly.
type Seq struct {
	Data             []float32
	TStride, BStride int
	Plane            int
}

// At is the plane of (t, b, c).
func (q Seq) At(t, b, c int) []float32 {
	o := t*q.TStride + b*q.BStride + c*q.Plane
	return q.Data[o : o+q.Plane]
}

// Layout views data of shape (B, T, C, H·W), or (T, B, C, H·W) when
// timeFirst, as a Seq.
func SeqLayout(data []float32, B, T, C, plane int, timeFirst bool) Seq {
	frame := C * plane
	if timeFirst {
		return Seq{Data: data, TStride: B * frame, BStride: frame, Plane: plane}
	}
	return Seq{Data: data, TStride: frame, BStride: T * frame, Plane: plane}
}

// Run replays the layer over steps frames of in, writing h of every step to
// out, starting from the state in the plan (zero when zeroState, in which
// case the first step's recurrent half is skipped: a convolution of zeros
// adds nothing).
func (p *CellPlan) Run(pool *Pool, in, out Seq, steps int, zeroState bool) {
	c := p.c
	S := p.L.S
	for t0 := 0; t0 < steps; t0 += p.tc {
		tc := min(p.tc, steps-t0)
		p.fillInput(in, t0, tc)
		if c.winoXH == nil {
			// gates[t] = bias + Wx * x[t], for every t of the chunk.
			p.planX.RunFrames(pool, p.gx, p.ldg, c.bias, [][]float32{p.xpad}, tc*p.B, false)
		}
		for tt := 0; tt < tc; tt++ {
			t := t0 + tt
			col := tt * p.B * S
			p.step(pool, p.xpad[col:], col, out, t, t == 0 && zeroState)
		}
	}
}

// step runs time step t, whose padded input frames are x (the gates of a
// direct cell's input half already in gx from column col on).
func (p *CellPlan) step(pool *Pool, x []float32, col int, out Seq, t int, hZero bool) {
	c := p.c
	switch {
	case c.winoXH != nil && hZero && p.planWinoX != nil:
		p.planWinoX.RunFrames(pool, p.gx[col:], p.ldg, c.bias, [][]float32{x}, p.B, false)
	case c.winoXH != nil && hZero:
		p.planX.RunFrames(pool, p.gx[col:], p.ldg, c.bias, [][]float32{x}, p.B, false)
	case c.winoXH != nil:
		// gates = bias + W * cat(x[t], h)
		p.srcs = [2][]float32{x, p.hpad}
		p.planXH.RunFrames(pool, p.gx[col:], p.ldg, c.bias, p.srcs[:], p.B, false)
	case !hZero:
		// gates[t] += Wh * h
		p.planH.RunFrames(pool, p.gx[col:], p.ldg, nil, [][]float32{p.hpad}, p.B, true)
	}
	// i, f, o, g = σ, σ, σ, tanh; c = f*c + i*g; h = o*tanh(c)
	p.gates.set(p, col, out, t)
	p.gates.cDense = p.stepC
	pool.Do(&p.gates, pool.PartsFor(c.Cfg.HiddenDim*p.B*p.H*p.W*64))
}

// ChainsTo reports whether q, the next layer's plan, can take this plan's
// padded h as its input frames (StepAfter): q's input is p's hidden state,
// for the same batch and image, in the same padded layout, one step at a
// time.
func (p *CellPlan) ChainsTo(q *CellPlan) bool {
	return q.c.Cfg.InputDim == p.c.Cfg.HiddenDim && q.B == p.B && q.L == p.L && q.ldg == q.B*q.L.S && len(p.hpad) >= len(q.xpad)
}

// StepAfter is Run over one step whose input is the h that prev (a plan
// for which prev.ChainsTo(p)) has just computed, read where prev keeps it:
// a stack of layers streaming a frame does not copy each layer's output
// into the next one's input. out may be Seq{} (no Data): h is then kept in
// the plan only.
func (p *CellPlan) StepAfter(pool *Pool, prev *CellPlan, out Seq, zeroState bool) {
	if !prev.ChainsTo(p) {
		panic(fmt.Sprintf("engine: StepAfter a plan of %d hidden channels for (%d, %d, %d) into one of %d input channels for (%d, %d, %d)", prev.c.Cfg.HiddenDim, prev.B, prev.H, prev.W, p.c.Cfg.InputDim, p.B, p.H, p.W))
	}
	if p.c.winoXH == nil {
		// gates = bias + Wx * x
		p.planX.RunFrames(pool, p.gx, p.ldg, p.c.bias, [][]float32{prev.hpad}, p.B, false)
	}
	p.step(pool, prev.hpad, 0, out, 0, zeroState)
}

// fillInput copies frames t0..t0+tc-1 of in into the interior of the padded
// input buffer; its borders stay zero from allocation.
func (p *CellPlan) fillInput(in Seq, t0, tc int) {
	S, WP := p.L.S, p.L.WP
	for ch := 0; ch < p.c.Cfg.InputDim; ch++ {
		for tt := 0; tt < tc; tt++ {
			for b := 0; b < p.B; b++ {
				src := in.At(t0+tt, b, ch)
				dst := p.xpad[ch*p.ldg+(tt*p.B+b)*S:]
				for y := 0; y < p.H; y++ {
					o := (y+p.ph)*WP + p.pw
					copy(dst[o:o+p.W], src[y*p.W:(y+1)*p.W])
				}
			}
		}
	}
}

// gateTask applies the cell update of one step, split over hidden channels:
// it reads the step's gate columns, updates c, writes h into the padded
// hidden buffer (the next step's recurrent input) and into out (unless
// out.Data is nil).
type gateTask struct {
	p   *CellPlan
	col int
	out Seq
	t   int
	// cDense, when set (a single Step), is the cell state in the caller's
	// (B, hidden, H, W) buffer, updated in place, and h goes to out only:
	// no next step reads the plan's padded h.
	cDense []float32
}

func (g *gateTask) set(p *CellPlan, col int, out Seq, t int) {
	g.p, g.col, g.out, g.t = p, col, out, t
}

func (g *gateTask) Run(part, parts int) {
	p := g.p
	hd, wd, S, WP := p.c.Cfg.HiddenDim, p.W, p.L.S, p.L.WP
	// Split by image rows, as the convolution that wrote the gates is
	// (Winograd tiles, direct column ranges): each part reads gates its
	// own core wrote.
	y0, y1 := Split(p.H, part, parts, 1)
	for ch := 0; ch < hd; ch++ {
		for b := 0; b < p.B; b++ {
			var dst []float32
			if g.out.Data != nil {
				dst = g.out.At(g.t, b, ch)
			}
			for y := y0; y < y1; y++ {
				j := g.col + b*S + y*WP
				gi := p.gx[(0*hd+ch)*p.ldg+j:][:wd]
				gf := p.gx[(1*hd+ch)*p.ldg+j:][:wd]
				gO := p.gx[(2*hd+ch)*p.ldg+j:][:wd]
				gg := p.gx[(3*hd+ch)*p.ldg+j:][:wd]
				if g.cDense != nil {
					c := g.cDense[((b*hd+ch)*p.H+y)*wd:][:wd]
					ops.LSTMGates(gi, gf, gO, gg, c, dst[y*wd:(y+1)*wd])
					continue
				}
				c := p.cstate[((ch*p.B+b)*p.H+y)*wd:][:wd]
				h := p.hpad[ch*p.B*S+b*S+(y+p.ph)*WP+p.pw:][:wd]
				ops.LSTMGates(gi, gf, gO, gg, c, h)
				if dst != nil {
					copy(dst[y*wd:(y+1)*wd], h)
				}
			}
		}
	}
}

// ZeroState clears h and c.
func (p *CellPlan) ZeroState() {
	clear(p.hpad)
	clear(p.cstate)
}

// SetState copies h and c, each (B, hidden, H, W), into the plan.
func (p *CellPlan) SetState(h, c []float32) {
	p.setH(h)
	hd, plane := p.c.Cfg.HiddenDim, p.H*p.W
	for b := 0; b < p.B; b++ {
		for ch := 0; ch < hd; ch++ {
			copy(p.cstate[(ch*p.B+b)*plane:][:plane], c[(b*hd+ch)*plane:][:plane])
		}
	}
}

// State copies the plan's h and c out as (B, hidden, H, W).
func (p *CellPlan) State(h, c []float32) {
	hd, plane, S, WP := p.c.Cfg.HiddenDim, p.H*p.W, p.L.S, p.L.WP
	for b := 0; b < p.B; b++ {
		for ch := 0; ch < hd; ch++ {
			dst := h[(b*hd+ch)*plane:][:plane]
			src := p.hpad[(ch*p.B+b)*S:]
			for y := 0; y < p.H; y++ {
				copy(dst[y*p.W:][:p.W], src[(y+p.ph)*WP+p.pw:][:p.W])
			}
			copy(c[(b*hd+ch)*plane:][:plane], p.cstate[(ch*p.B+b)*plane:][:plane])
		}
	}
}

// Step advances one time step for callers that hold the state themselves
// (the ONNX interpreter's fused cells): x is (B, In, H, W), h and c are
// (B, Hidden, H, W); the new state goes to hOut and cOut (which may be h
// and c). A step whose h is all zeros skips the recurrent half, as the
// first step of Run from a zero state does. Step rewrites the plan's
// padded h and leaves its c alone: a plan serves Steps of any cell
// instance, and Run after SetState or ZeroState.
func (p *CellPlan) Step(pool *Pool, x, h, c, hOut, cOut []float32) {
	zero := true
	for _, v := range h {
		if v != 0 {
			zero = false
			break
		}
	}
	// h into the padded buffer the convolution reads; c straight into
	// cOut, which the gates update in place, writing h to hOut: the plan
	// keeps no state between Steps (SetState and State are not needed).
	p.setH(h)
	copy(cOut, c)
	plane := p.H * p.W
	in := SeqLayout(x, p.B, 1, p.c.Cfg.InputDim, plane, false)
	out := SeqLayout(hOut, p.B, 1, p.c.Cfg.HiddenDim, plane, false)
	p.stepC = cOut
	defer func() { p.stepC = nil }()
	p.Run(pool, in, out, 1, zero)
}

// setH copies h, (B, hidden, H, W), into the padded hidden buffer.
func (p *CellPlan) setH(h []float32) {
	hd, plane, S, WP := p.c.Cfg.HiddenDim, p.H*p.W, p.L.S, p.L.WP
	for b := 0; b < p.B; b++ {
		for ch := 0; ch < hd; ch++ {
			src := h[(b*hd+ch)*plane:][:plane]
			dst := p.hpad[(ch*p.B+b)*S:]
			for y := 0; y < p.H; y++ {
				copy(dst[(y+p.ph)*WP+p.pw:][:p.W], src[y*p.W:][:p.W])
			}
		}
	}
}
