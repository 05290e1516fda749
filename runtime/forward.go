package runtime

import "github.com/convlstm-go/convlstm-go/ops"

// seq views a sequence of frames (T, B, C, H, W) stored with any time and
// batch strides: the plane of (t, b, channel c) starts at
// t·tStride + b·bStride + c·plane. Batch-first and time-first tensors are
// both seqs, so layers read and write the caller's layout directly.
type seq struct {
	data             []float32
	tStride, bStride int
	plane            int
}

func (q seq) at(t, b, c int) []float32 {
	o := t*q.tStride + b*q.bStride + c*q.plane
	return q.data[o : o+q.plane]
}

// runLayer replays one ConvLSTM layer over steps frames of in, writing h of
// every step to out, starting from the state in p.hpad/p.cstate (zero when
// zeroState, in which case the first step's recurrent half is skipped: a
// convolution of zeros adds nothing).
//
// PyTorch computes conv(cat(x, h)) per step. With direct convolutions the
// same sum is split here into its input half, computed for a whole chunk of
// time steps at once since it does not depend on h, and its recurrent half,
// added per step:
//
//	gates[t] = bias + Wx * x[t]               (for all t of the chunk)
//	gates[t] += Wh * h[t-1]                   (per step)
//	i, f, o, g = σ, σ, σ, tanh of gates[t]
//	c = f*c + i*g;  h = o*tanh(c)
//
// A layer whose recurrent half runs as Winograd does conv(cat(x, h)) in one
// go per step instead (one GEMM, one output transform). Either way, a step
// from a zero state adds nothing for h.
func (r *Runner) runLayer(p *layerPlan, in seq, out seq, steps int, zeroState bool) {
	w := p.w
	for t0 := 0; t0 < steps; t0 += p.tc {
		tc := min(p.tc, steps-t0)
		p.fillInput(in, t0, tc)
		if w.winoXH == nil {
			r.conv(p, nil, w.wx, p.gx, w.bias, p.xpad, p.offsX, p.ldg, tc*p.b, false)
		}
		for tt := 0; tt < tc; tt++ {
			t := t0 + tt
			col := tt * p.b * p.s
			hZero := t == 0 && zeroState
			switch {
			case w.winoXH != nil && hZero:
				r.conv(p, w.winoX, w.wx, p.gx[col:], w.bias, p.xpad[col:], p.offsX, p.ldg, p.b, false)
			case w.winoXH != nil:
				r.convCat(p, p.gx[col:], w.bias, p.xpad[col:])
			case !hZero:
				r.conv(p, nil, w.wh, p.gx[col:], nil, p.hpad, p.offsH, p.b*p.s, p.b, true)
			}
			p.gates.set(p, col, out, t)
			r.pool.do(&p.gates, r.partsFor(w.cfg.HiddenDim*p.b*p.h*p.wd*64))
		}
	}
}

// fillInput copies frames t0..t0+tc-1 of in into the interior of the padded
// input buffer; its borders stay zero from allocation.
func (p *layerPlan) fillInput(in seq, t0, tc int) {
	in0 := p.w.cfg.InputDim
	for c := 0; c < in0; c++ {
		for tt := 0; tt < tc; tt++ {
			for b := 0; b < p.b; b++ {
				src := in.at(t0+tt, b, c)
				dst := p.xpad[c*p.ldg+(tt*p.b+b)*p.s:]
				for y := 0; y < p.h; y++ {
					o := (y+p.w.ph)*p.wp + p.w.pw
					copy(dst[o:o+p.wd], src[y*p.wd:(y+1)*p.wd])
				}
			}
		}
	}
}

// gemmTask runs ops.ConvGemm with its columns split between workers; each
// column is computed whole by one worker, so the result does not depend on
// the number of threads.
type gemmTask struct {
	c    []float32
	ldc  int
	a    *ops.PackedA
	bias []float32
	b    []float32
	offs []int32
	n    int
	acc  bool
}

// gemmAlign keeps each worker's column range a multiple of the kernels'
// widest tile.
const gemmAlign = 64

func (g *gemmTask) run(part, parts int) {
	j0, j1 := split(g.n, part, parts, gemmAlign)
	if j0 >= j1 {
		return
	}
	ops.ConvGemm(g.c[j0:], g.ldc, g.a, g.bias, g.b[j0:], g.offs, j1-j0, g.acc)
}

// conv adds (acc) or writes (bias + ...) one half of a layer's convolution
// over frames padded frames of in (channels chanStride apart) into the gate
// rows c (stride p.ldg): by Winograd when the layer has it, else directly.
func (r *Runner) conv(p *layerPlan, wino *ops.Winograd3x3, a *ops.PackedA, c, bias, in []float32, offs []int32, chanStride, frames int, acc bool) {
	n := p.columns(frames)
	parts := r.partsFor(2 * a.M * a.K * n)
	if wino != nil {
		p.wino = winoTask{w: wino, out: c, ldc: p.ldg, bias: bias, in: in, chanStride: chanStride, frames: frames, p: p, acc: acc}
		r.pool.do(&p.wino, parts)
		return
	}
	p.gemm = gemmTask{c: c, ldc: p.ldg, a: a, bias: bias, b: in, offs: offs, n: n, acc: acc}
	r.pool.do(&p.gemm, parts)
}

// convCat writes bias + conv(cat(x, h)) of one step into the gate rows c,
// with x the step's padded input frames and h the padded hidden state, each
// read once per 3×3 block of the kernel at the block's offset.
func (r *Runner) convCat(p *layerPlan, c, bias, x []float32) {
	w := p.w
	p.srcs = p.srcs[:0]
	for _, half := range [2]ops.WinoInput{
		{Data: x, ChanStride: p.ldg, Channels: w.cfg.InputDim},
		{Data: p.hpad, ChanStride: p.b * p.s, Channels: w.cfg.HiddenDim},
	} {
		for bi := 0; bi < w.nbh; bi++ {
			for bj := 0; bj < w.nbw; bj++ {
				src := half
				src.Data = half.Data[3*bi*p.wp+3*bj:]
				p.srcs = append(p.srcs, src)
			}
		}
	}
	p.wino = winoTask{w: w.winoXH, out: c, ldc: p.ldg, bias: bias, srcs: p.srcs, frames: p.b, p: p}
	r.pool.do(&p.wino, r.partsFor(2*w.winoXH.M*w.winoXH.C*9*p.columns(p.b)))
}

// winoTask runs a Winograd convolution split into parts, each worker with
// its own scratch; with srcs set, over their concatenation.
type winoTask struct {
	w          *ops.Winograd3x3
	out        []float32
	ldc        int
	bias, in   []float32
	chanStride int
	frames     int
	p          *layerPlan
	acc        bool
	srcs       []ops.WinoInput
}

func (t *winoTask) run(part, parts int) {
	p := t.p
	if t.srcs != nil {
		t.w.ConvMulti(t.out, t.ldc, t.bias, t.srcs, t.frames, p.h, p.wd, p.wp, p.s, t.acc, p.ws[part], part, parts)
		return
	}
	t.w.Conv(t.out, t.ldc, t.bias, t.in, t.chanStride, t.frames, p.h, p.wd, p.wp, p.s, t.acc, p.ws[part], part, parts)
}

// gateTask applies the cell update of one step, split over hidden channels:
// it reads the step's gate columns, updates c, writes h into the padded
// hidden buffer (the next step's recurrent input) and into out.
type gateTask struct {
	p   *layerPlan
	col int
	out seq
	t   int
}

func (g *gateTask) set(p *layerPlan, col int, out seq, t int) {
	g.p, g.col, g.out, g.t = p, col, out, t
}

func (g *gateTask) run(part, parts int) {
	p := g.p
	hd, wd := p.w.cfg.HiddenDim, p.wd
	c0, c1 := split(hd, part, parts, 1)
	for ch := c0; ch < c1; ch++ {
		for b := 0; b < p.b; b++ {
			dst := g.out.at(g.t, b, ch)
			for y := 0; y < p.h; y++ {
				j := g.col + b*p.s + y*p.wp
				gi := p.gx[(0*hd+ch)*p.ldg+j:][:wd]
				gf := p.gx[(1*hd+ch)*p.ldg+j:][:wd]
				gO := p.gx[(2*hd+ch)*p.ldg+j:][:wd]
				gg := p.gx[(3*hd+ch)*p.ldg+j:][:wd]
				c := p.cstate[((ch*p.b+b)*p.h+y)*wd:][:wd]
				h := p.hpad[ch*p.b*p.s+b*p.s+(y+p.w.ph)*p.wp+p.w.pw:][:wd]
				ops.LSTMGates(gi, gf, gO, gg, c, h)
				copy(dst[y*wd:(y+1)*wd], h)
			}
		}
	}
}

// split returns part's share [lo, hi) of n items, in blocks of align.
func split(n, part, parts, align int) (int, int) {
	blocks := (n + align - 1) / align
	lo := blocks * part / parts * align
	hi := blocks * (part + 1) / parts * align
	return min(lo, n), min(hi, n)
}

// minWorkPerThread (in flops) keeps tiny layers on one thread, where waking
// a worker costs more than it saves.
const minWorkPerThread = 1 << 18

func (r *Runner) partsFor(work int) int {
	return max(1, min(r.threads, work/minWorkPerThread))
}
