package engine

import "github.com/convlstm-go/convlstm-go/ops"

// The direct convolution with native bfloat16 arithmetic: the input's
// channels 2p and 2p+1 (within a group) become one plane of bfloat16 pairs,
// converted once per Run, and ops.ConvGemmBF16 reads the pair planes
// through an offset table as ConvGemm reads the channel planes.

// newPairs sizes the pair planes and their offsets: a pair plane covers
// what the GEMM reads of a channel plane for all of the plan's frames.
func (p *ConvPlan) newPairs() {
	s, l := p.c.Spec, p.L
	g, kk := s.groups(), s.KH*s.KW
	cpg := (s.C/g + 1) / 2
	p.pairLen = (l.Frames-1)*l.S + l.HP*l.WP
	p.pairs = make([]uint32, g*cpg*p.pairLen)
	for gi := 0; gi < g; gi++ {
		o := make([]int32, 0, cpg*kk)
		for cp := 0; cp < cpg; cp++ {
			for ky := 0; ky < s.KH; ky++ {
				for kx := 0; kx < s.KW; kx++ {
					o = append(o, int32((gi*cpg+cp)*p.pairLen+ky*s.dilH()*l.WP+kx*s.dilW()))
				}
			}
		}
		p.offsB = append(p.offsB, o)
	}
}

// runBF16 converts the first frames frames of src to pair planes, then runs
// the bfloat16 GEMM of every group, columns split between workers.
func (p *ConvPlan) runBF16(pool *Pool, out []float32, ldc int, bias, src []float32, frames, n int, acc bool, parts int) {
	s, l := p.c.Spec, p.L
	g := s.groups()
	cnt := (frames-1)*l.S + l.HP*l.WP
	p.pair = pairTask{p: p, src: src, cnt: cnt}
	pool.Do(&p.pair, pool.PartsFor(scalarWork*g*(s.C/g+1)/2*cnt))
	p.gemm = gemmTask{p: p, out: out, ldc: ldc, bias: bias, n: n, acc: acc}
	pool.Do(&p.gemm, parts)
	p.pair = pairTask{}
}

// pairTask fills the pair planes, planes split between workers.
type pairTask struct {
	p   *ConvPlan
	src []float32
	cnt int
}

func (t *pairTask) Run(part, parts int) {
	p := t.p
	s := p.c.Spec
	g := s.groups()
	cg := s.C / g
	cpg := (cg + 1) / 2
	stride := p.strides[0]
	q0, q1 := Split(g*cpg, part, parts, 1)
	for q := q0; q < q1; q++ {
		gi, cp := q/cpg, q%cpg
		ch := gi*cg + 2*cp
		lo := t.src[ch*stride:][:t.cnt]
		var hi []float32
		if 2*cp+1 < cg {
			hi = t.src[(ch+1)*stride:][:t.cnt]
		}
		ops.BF16Pairs(p.pairs[q*p.pairLen:][:t.cnt], lo, hi)
	}
}

// runBF16 is gemmTask.Run on the bfloat16 pair planes.
func (t *gemmTask) runBF16(j0, j1 int) {
	mg := t.p.c.Spec.M / t.p.c.Spec.groups()
	for gi, a := range t.p.c.ab {
		var bias []float32
		if t.bias != nil {
			bias = t.bias[gi*mg : (gi+1)*mg]
		}
		ops.ConvGemmBF16(t.out[gi*mg*t.ldc+j0:], t.ldc, a, bias, t.p.pairs[j0:], t.p.offsB[gi], j1-j0, t.acc)
	}
}
