// Command asmgen generates ops/kernels_amd64.s and its Go declarations with
// avo. Run it through go generate in ops:
//
//	go generate ./ops
//
// One generator emits both the AVX2 (YMM) and AVX-512 (ZMM) versions of each
// kernel from the same code, so the two paths cannot drift apart in their
// arithmetic: they differ only in vector width, tile shape and how column
// tails are masked.
package main

import (
	"fmt"
	"math"

	"github.com/convlstm-go/convlstm-go/ops/internal/gatepoly"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// panelRows must match ops.panelRows: the stride (in floats) between
// consecutive k of a packed A panel.
const panelRows = 8

// isa describes one vector extension.
type isa struct {
	name  string
	width int // float32 lanes per vector
	vec   func(i int) VecPhysical
	// GEMM tile: rows × nv vectors of C held in registers; a panel of
	// panelRows rows takes panelRows/rows tiles on the same columns.
	rows, nv int
}

func (s isa) bytes() int { return 4 * s.width }

var avx2 = isa{
	name:  "AVX2",
	width: 8,
	vec:   func(i int) VecPhysical { return ymm[i] },
	// 4×3 accumulators + 3 B + 1 broadcast = all 16 YMM registers.
	rows: 4, nv: 3,
}

var avx512 = isa{
	name:  "AVX512",
	width: 16,
	vec:   func(i int) VecPhysical { return zmm[i] },
	// 8×3 accumulators + 3 B + 4 rotating broadcasts = 31 ZMM registers.
	rows: 8, nv: 3,
}

var ymm = []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}

var zmm = []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
	Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}

func main() {
	ConstraintExpr("amd64,!purego")

	// Lane masks for the AVX2 column tail: 8 all-ones words then 8 zero
	// words; the 8 words starting at index 8-m enable the first m lanes.
	tailMask := GLOBL("tailmask", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		v := uint32(0)
		if i < 8 {
			v = 0xffffffff
		}
		DATA(4*i, U32(v))
	}

	gemm(avx2, tailMask)
	gemm(avx512, tailMask)
	gates(avx2, false)
	gates(avx512, false)
	gates(avx2, true)
	gates(avx512, true)
	relu(avx2)
	relu(avx512)
	max2(avx2)
	max2(avx512)
	evenOdd := GLOBL("evenodd", RODATA|NOPTR)
	for i := 0; i < 32; i++ { // 0, 2, ..., 30, then 1, 3, ..., 31
		DATA(4*i, U32(uint32(2*(i%16)+i/16)))
	}
	maxPairs(avx2, evenOdd)
	maxPairs(avx512, evenOdd)
	leakyRelu(avx2)
	leakyRelu(avx512)
	mulAdd(avx2)
	mulAdd(avx512)
	blend(avx2)
	blend(avx512)
	gather2(avx2)
	gather2(avx512)
	perm2()
	scaleShift(avx2)
	scaleShift(avx512)
	normElem(avx2)
	normElem(avx512)
	moments(avx2)
	moments(avx512)
	one := GLOBL("probeone", RODATA|NOPTR)
	DATA(0, U32(math.Float32bits(1)))
	fmaProbe(avx2, one)
	fmaProbe(avx512, one)
	Generate()
}

// gemm emits gemmPanel<ISA>: one packed panel's panelRows rows of C (fewer
// if rows < panelRows; rows past that are computed but never stored, and
// their bias and C values are never read) over all n columns.
//
// The column loop runs full tiles of nv vectors, then the remaining columns
// one masked vector at a time, so no b element past offs[k]+n-1 and no c
// element past column n-1 is touched. Every column's sum is the same FMA
// chain over k = 0..K-1 whichever branch covers it, so results do not depend
// on where a caller splits columns.
func gemm(s isa, tailMask Mem) {
	TEXT("gemmPanel"+s.name, NOSPLIT, "func(c *float32, ldc int, a *float32, bias *float32, b *float32, offs *int32, k int, n int, rows int, mode int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("gemmPanel%s computes up to %d rows (one packed panel) of ConvGemm over n columns.", s.name, panelRows),
		"mode 0 starts from zero, 1 from bias[r], 2 from c (accumulate).",
		"a points at the first row's A value for k = 0 (stride "+fmt.Sprint(panelRows)+" floats per k); k must be ≥ 1.")

	cj := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	bj := Load(Param("b"), GP64())
	n := Load(Param("n"), GP64())

	tileCols := s.width * s.nv
	acc := func(r, v int) VecPhysical { return s.vec(r*s.nv + v) }
	bv := func(v int) VecPhysical { return s.vec(s.rows*s.nv + v) }
	nb := len(ymm)
	if s.width == 16 {
		nb = len(zmm)
	}
	nbcast := nb - s.rows*s.nv - s.nv
	if nbcast > 4 {
		nbcast = 4
	}
	bc := func(i int) VecPhysical { return s.vec(s.rows*s.nv + s.nv + i%nbcast) }

	// tile emits one row-block × nvec-vector tile; masked selects the tail
	// form, whose lane masks are set up by the caller (K1 for AVX-512, the
	// register mask for AVX2).
	var mask VecPhysical
	tile := func(prefix string, nvec int, masked bool, h int) {
		load := func(m Mem, dst VecPhysical) {
			switch {
			case !masked:
				VMOVUPS(m, dst)
			case s.width == 16:
				VMOVUPS_Z(m, K1, dst)
			default:
				VMASKMOVPS(m, mask, dst)
			}
		}
		store := func(src VecPhysical, m Mem) {
			switch {
			case !masked && s.width == 16:
				// Two 256-bit halves: a burst of 24 ZMM stores at
				// the end of a tile stalls the FMAs on Zen 5 (an
				// FMA loop with 24 ZMM stores per 216 FMAs runs at
				// 82% of the store-free rate, with the same bytes
				// stored as 48 halves at 93-94%); for K = 9 the
				// kernel gains ~10%, for K = 576 ~2%.
				VMOVUPS(src.AsY(), m)
				VEXTRACTF64X4(U8(1), src, m.Offset(32))
			case !masked:
				VMOVUPS(src, m)
			case s.width == 16:
				VMOVUPS(src, K1, m)
			default:
				VMASKMOVPS(src, mask, m)
			}
		}
		rows := Load(Param("rows"), GP64())
		if h > 0 {
			SUBQ(Imm(uint64(h*s.rows)), rows)
			CMPQ(rows, Imm(0))
			JLE(LabelRef(prefix + "_done"))
		}
		// Row 0 of this block of rows in c.
		cb := func(cr Register) {
			if h == 0 {
				MOVQ(cj, cr)
			} else {
				LEAQ(Mem{Base: cj, Index: ldc, Scale: 4}, cr)
				for i := 1; i < h; i++ {
					LEAQ(Mem{Base: cr, Index: ldc, Scale: 4}, cr)
				}
			}
		}
		mode := Load(Param("mode"), GP64())
		// Start values.
		for r := 0; r < s.rows; r++ {
			for v := 0; v < nvec; v++ {
				zero(s, acc(r, v))
			}
		}
		CMPQ(mode, Imm(1))
		JL(LabelRef(prefix + "_k"))
		JE(LabelRef(prefix + "_bias"))
		cr := GP64()
		cb(cr)
		for r := 0; r < s.rows; r++ {
			if r > 0 {
				CMPQ(rows, Imm(uint64(r)))
				JLE(LabelRef(prefix + "_k"))
				ADDQ(ldc, cr)
			}
			for v := 0; v < nvec; v++ {
				load(Mem{Base: cr, Disp: v * s.bytes()}, acc(r, v))
			}
		}
		JMP(LabelRef(prefix + "_k"))
		Label(prefix + "_bias")
		bias := Load(Param("bias"), GP64())
		for r := 0; r < s.rows; r++ {
			if r > 0 {
				CMPQ(rows, Imm(uint64(r)))
				JLE(LabelRef(prefix + "_k"))
			}
			VBROADCASTSS(Mem{Base: bias, Disp: 4 * (r + h*s.rows)}, acc(r, 0))
			for v := 1; v < nvec; v++ {
				VMOVAPS(acc(r, 0), acc(r, v))
			}
		}

		// The k loop: B rows come from b + offs[k] + j.
		Label(prefix + "_k")
		ap := Load(Param("a"), GP64())
		op := Load(Param("offs"), GP64())
		kc := Load(Param("k"), GP64())
		o := GP64()
		// One k: the B vectors at b + offs[k] + j, then MR broadcast-FMAs.
		step := func(i int) {
			MOVLQSX(Mem{Base: op, Disp: 4 * i}, o)
			for v := 0; v < nvec; v++ {
				load(Mem{Base: bj, Index: o, Scale: 4, Disp: v * s.bytes()}, bv(v))
			}
			for r := 0; r < s.rows; r++ {
				VBROADCASTSS(Mem{Base: ap, Disp: 4*(r+h*s.rows) + 4*panelRows*i}, bc(r))
				for v := 0; v < nvec; v++ {
					VFMADD231PS(bv(v), bc(r), acc(r, v))
				}
			}
		}
		// Unrolled by two (an odd K peels one k first) so the loop
		// bookkeeping is paid per pair.
		TESTQ(U32(1), kc)
		JZ(LabelRef(prefix + "_even"))
		step(0)
		ADDQ(Imm(4*panelRows), ap)
		ADDQ(Imm(4), op)
		DECQ(kc)
		JZ(LabelRef(prefix + "_kdone"))
		Label(prefix + "_even")
		Label(prefix + "_kloop")
		step(0)
		step(1)
		ADDQ(Imm(8*panelRows), ap)
		ADDQ(Imm(8), op)
		SUBQ(Imm(2), kc)
		JNZ(LabelRef(prefix + "_kloop"))
		Label(prefix + "_kdone")

		// Store the rows that exist.
		cb(cr)
		for r := 0; r < s.rows; r++ {
			if r > 0 {
				CMPQ(rows, Imm(uint64(r)))
				JLE(LabelRef(prefix + "_done"))
				ADDQ(ldc, cr)
			}
			for v := 0; v < nvec; v++ {
				store(acc(r, v), Mem{Base: cr, Disp: v * s.bytes()})
			}
		}
		Label(prefix + "_done")
	}

	// Full tiles.
	Label("full" + s.name)
	CMPQ(n, Imm(uint64(tileCols)))
	JL(LabelRef("tail" + s.name))
	// With fewer rows per tile than a panel has (AVX2), the row blocks of
	// a panel run back to back on the same columns, so their B tile is
	// still in L1 for the second block.
	for h := 0; h < panelRows/s.rows; h++ {
		tile(fmt.Sprintf("full%s%d", s.name, h), s.nv, false, h)
	}
	ADDQ(Imm(uint64(4*tileCols)), cj)
	ADDQ(Imm(uint64(4*tileCols)), bj)
	SUBQ(Imm(uint64(tileCols)), n)
	JMP(LabelRef("full" + s.name))

	// Tail: one masked vector per pass until the columns run out.
	Label("tail" + s.name)
	CMPQ(n, Imm(0))
	JLE(LabelRef("ret" + s.name))
	m := GP64()
	MOVQ(n, m)
	w := GP64()
	MOVQ(U32(s.width), w)
	CMPQ(m, w)
	CMOVQGT(w, m)
	if s.width == 16 {
		bits := GP32()
		MOVL(U32(0xffff), bits)
		BZHIL(m.As32(), bits, bits)
		KMOVW(bits, K1)
	} else {
		// The mask register is the first broadcast register slot, which
		// the one-vector tail leaves free.
		mask = s.vec(s.rows*s.nv + s.nv)
		bc = func(int) VecPhysical { return s.vec(s.rows*s.nv + s.nv - 1) }
		bv = func(v int) VecPhysical { return s.vec(s.rows*s.nv + v) }
		mp := GP64()
		LEAQ(tailMask, mp)
		NEGQ(m)
		VMOVDQU(Mem{Base: mp, Index: m, Scale: 4, Disp: 4 * 8}, mask)
	}
	for h := 0; h < panelRows/s.rows; h++ {
		tile(fmt.Sprintf("tail%s%d", s.name, h), 1, true, h)
	}
	ADDQ(Imm(uint64(s.bytes())), cj)
	ADDQ(Imm(uint64(s.bytes())), bj)
	SUBQ(Imm(uint64(s.width)), n)
	JMP(LabelRef("tail" + s.name))

	Label("ret" + s.name)
	VZEROUPPER()
	RET()
}

func zero(s isa, r VecPhysical) {
	if s.width == 16 {
		VPXORD(r, r, r)
	} else {
		VXORPS(r, r, r)
	}
}

// gateUnroll is how many vectors of positions one gate-loop iteration
// covers; the Go wrapper pads n to a multiple of gateUnroll·width.
const gateUnroll = 2

// Constants for the gate kernel, one full vector each.
type constTable struct {
	s   isa
	mem Mem
	idx map[string]int
}

func (t *constTable) get(name string) Mem {
	i, ok := t.idx[name]
	if !ok {
		panic("no constant " + name)
	}
	return t.mem.Offset(i * t.s.bytes())
}

// gateConsts are the tables made so far, one per vector width (the gate
// kernels of one width share it).
var gateConsts = map[int]*constTable{}

func newConsts(s isa) *constTable {
	if t := gateConsts[s.width]; t != nil {
		return t
	}
	t := &constTable{s: s, idx: map[string]int{}}
	gateConsts[s.width] = t
	t.mem = GLOBL("gateconst"+s.name, RODATA|NOPTR)
	for i, v := range gatepoly.Table {
		t.idx[v.Name] = i
		for l := 0; l < s.width; l++ {
			DATA(i*s.bytes()+4*l, U32(v.Bits))
		}
	}
	return t
}

// gates emits gates<ISA> over n positions, n a multiple of the vector
// width (the Go wrapper pads the tail).
//
// Each activation is a chain of ~20 dependent operations, so evaluated one
// after another they leave the FMA pipes idle waiting on latency. The
// independent ones (σ(i), σ(f), σ(o), tanh(g)) are therefore emitted in
// lockstep, one instruction per stream in turn; only tanh(c) runs alone and
// overlaps the next iteration out of order.
//
// With peep it emits gatesPeep<ISA> instead, the peephole cell: i and f
// read wi·c and wf·c, o reads wo·c' (each product rounded, then added, as
// lstmPeepGeneric), and c' goes to cNew, c left as it is.
func gates(s isa, peep bool) {
	k := newConsts(s)
	names := []string{"gi", "gf", "gO", "gg", "c", "h"}
	if peep {
		TEXT("gatesPeep"+s.name, NOSPLIT, "func(gi, gf, gO, gg, wi, wf, wo, c, cNew, h *float32, n int)")
		Pragma("noescape")
		Doc(fmt.Sprintf("gatesPeep%s is the fused peephole cell update; n must be a multiple of %d.", s.name, gateUnroll*s.width))
		names = []string{"gi", "gf", "gO", "gg", "c", "h", "wi", "wf", "wo", "cNew"}
	} else {
		TEXT("gates"+s.name, NOSPLIT, "func(gi, gf, gO, gg, c, h *float32, n int)")
		Pragma("noescape")
		Doc(fmt.Sprintf("gates%s is the fused cell update; n must be a multiple of %d.", s.name, gateUnroll*s.width))
	}
	ptrs := make([]Register, len(names))
	for i, name := range names {
		ptrs[i] = Load(Param(name), GP64())
	}
	// Where c' is stored: over c, or to cNew.
	cOut := 4
	if peep {
		cOut = 9
	}
	n := Load(Param("n"), GP64())
	vec := func() VecVirtual {
		if s.width == 16 {
			return ZMM()
		}
		return YMM()
	}
	and := func(a Op, b, d Register) {
		if s.width == 16 {
			VPANDD(a, b, d)
		} else {
			VANDPS(a, b, d)
		}
	}
	or := func(a Op, b, d Register) {
		if s.width == 16 {
			VPORD(a, b, d)
		} else {
			VORPS(a, b, d)
		}
	}
	xor := func(a Op, b, d Register) {
		if s.width == 16 {
			VPXORD(a, b, d)
		} else {
			VXORPS(a, b, d)
		}
	}
	// Constants are loaded unaligned: the linker only guarantees 32-byte
	// alignment, short of what VMOVAPS needs for a ZMM operand.
	ld := func(name string) Register {
		v := vec()
		VMOVUPS(k.get(name), v)
		return v
	}
	// exp returns e^x for each x (clobbered). The clamps keep 2^n a normal
	// float; a NaN x stays NaN because x is the operand MINPS/MAXPS return
	// when one side is NaN.
	exp := func(xs []Register) []Register {
		u := len(xs)
		for _, x := range xs {
			lim := vec()
			VBROADCASTSS(k.get("expHi"), lim)
			VMINPS(x, lim, x)
			VBROADCASTSS(k.get("expLo"), lim)
			VMAXPS(x, lim, x)
		}
		ts := make([]Register, u)
		for i, x := range xs {
			ts[i] = ld("magic")
			VFMADD231PS(k.get("log2e"), x, ts[i]) // t = x·log2e + magic
		}
		for i, x := range xs {
			nf := vec()
			VSUBPS(k.get("magic"), ts[i], nf) // n as float
			VFNMADD231PS(k.get("ln2hi"), nf, x)
			VFNMADD231PS(k.get("ln2lo"), nf, x) // x = r
		}
		ps := make([]Register, u)
		for i := range xs {
			ps[i] = ld("p0")
		}
		for _, c := range []string{"p1", "p2", "p3", "p4", "p5"} {
			for i, x := range xs {
				VFMADD213PS(k.get(c), x, ps[i]) // p = p·r + c
			}
		}
		for i, x := range xs {
			z := vec()
			VMULPS(x, x, z)
			VFMADD213PS(x, z, ps[i]) // p = p·r² + r
			VADDPS(k.get("one"), ps[i], ps[i])
		}
		for i := range xs {
			VPSLLD(U8(23), ts[i], ts[i])
			VPADDD(k.get("bias127"), ts[i], ts[i]) // 2^n
			VMULPS(ts[i], ps[i], ps[i])
		}
		return ps
	}
	// act evaluates σ or tanh (isTanh) of each x, in lockstep. For tanh
	// the small-|x| polynomial and the sign are formed after the shared exp
	// so that fewer registers are live across it.
	act := func(xs []Register, isTanh []bool) []Register {
		args := make([]Register, len(xs))
		for i, x := range xs {
			if !isTanh[i] {
				xor(k.get("sign"), x, x)
				args[i] = x
				continue
			}
			// Large |x|: 1 - 2/(e^{2|x|}+1) with the sign of x.
			a := vec()
			and(k.get("abs"), x, a)
			VADDPS(a, a, a)
			args[i] = a
		}
		es := exp(args)
		out := make([]Register, len(xs))
		nk := 0
		for i, e := range es {
			VADDPS(k.get("one"), e, e)
			if !isTanh[i] {
				r := ld("one")
				VDIVPS(e, r, r)
				out[i] = r
				continue
			}
			x := xs[i]
			q := ld("two")
			VDIVPS(e, q, q)
			r := ld("one")
			VSUBPS(q, r, r)
			sg := vec()
			and(k.get("sign"), x, sg)
			or(sg, r, r)
			// Small |x|: odd polynomial, keeps full relative accuracy
			// near 0.
			z := vec()
			VMULPS(x, x, z)
			p := ld("t0")
			for _, c := range []string{"t1", "t2", "t3", "t4"} {
				VFMADD213PS(k.get(c), z, p)
			}
			VMULPS(z, p, p)
			VFMADD213PS(x, x, p) // p·z·x + x
			ax := vec()
			and(k.get("abs"), x, ax)
			if s.width == 16 {
				m := []Register{K2, K3, K4, K5}[nk]
				nk++
				VCMPPS(U8(1), k.get("tanhSmall"), ax, m) // |x| < 0.625
				VBLENDMPS(p, r, m, r)                    // m ? p : r
			} else {
				VCMPPS(U8(1), k.get("tanhSmall"), ax, ax)
				VBLENDVPS(ax, p, r, r) // |x| < 0.625 ? p : r
			}
			out[i] = r
		}
		return out
	}

	// gateUnroll vectors per iteration give the FMA pipes enough
	// independent chains; the grouping keeps AVX2 within 16 registers.
	tag := s.name
	if peep {
		tag = "Peep" + s.name
	}
	Label("loop" + tag)
	CMPQ(n, Imm(0))
	JLE(LabelRef("done" + tag))
	const u = gateUnroll
	load := func(i, v int) Register {
		r := vec()
		VMOVUPS(Mem{Base: ptrs[i], Disp: v * s.bytes()}, r)
		return r
	}
	// pre is gate i's pre-activation: with peep, plus w·c for i and f (the
	// product rounded, then added; c loaded once a vector and kept).
	var cIn []Register
	pre := func(i, v int) Register {
		x := load(i, v)
		if peep && i < 2 {
			if len(cIn) <= v {
				cIn = append(cIn, load(4, v))
			}
			t := load(6+i, v)
			VMULPS(cIn[v], t, t)
			VADDPS(t, x, x)
		}
		return x
	}
	var tg, si, sf, so, cs, tc []Register
	if s.width == 16 {
		xs, kinds := []Register{}, []bool{}
		for v := 0; v < u; v++ {
			xs = append(xs, pre(0, v), pre(1, v), load(3, v))
			kinds = append(kinds, false, false, true)
		}
		r := act(xs, kinds)
		for v := 0; v < u; v++ {
			si, sf, tg = append(si, r[3*v]), append(sf, r[3*v+1]), append(tg, r[3*v+2])
		}
	} else {
		var xs []Register
		for v := 0; v < u; v++ {
			xs = append(xs, load(3, v))
		}
		tg = act(xs, []bool{true, true})
		xs = xs[:0]
		for v := 0; v < u; v++ {
			xs = append(xs, pre(0, v), pre(1, v))
		}
		r := act(xs, []bool{false, false, false, false})
		for v := 0; v < u; v++ {
			si, sf = append(si, r[2*v]), append(sf, r[2*v+1])
		}
	}
	for v := 0; v < u; v++ {
		var c Register
		if peep {
			c = cIn[v]
		} else {
			c = load(4, v)
		}
		VMULPS(tg[v], si[v], si[v])
		VFMADD213PS(si[v], sf[v], c) // c = f·c + i·g
		VMOVUPS(c, Mem{Base: ptrs[cOut], Disp: v * s.bytes()})
		cs = append(cs, c)
	}
	// o's pre-activation: with peep, plus wo·c'.
	preO := func(v int) Register {
		x := load(2, v)
		if peep {
			t := load(8, v)
			VMULPS(cs[v], t, t)
			VADDPS(t, x, x)
		}
		return x
	}
	if s.width == 16 {
		xs, kinds := []Register{}, []bool{}
		for v := 0; v < u; v++ {
			xs = append(xs, preO(v), cs[v])
			kinds = append(kinds, false, true)
		}
		r := act(xs, kinds)
		for v := 0; v < u; v++ {
			so, tc = append(so, r[2*v]), append(tc, r[2*v+1])
		}
	} else {
		var xs []Register
		for v := 0; v < u; v++ {
			xs = append(xs, preO(v))
		}
		so = act(xs, []bool{false, false})
		tc = act(cs, []bool{true, true})
	}
	for v := 0; v < u; v++ {
		VMULPS(tc[v], so[v], so[v])
		VMOVUPS(so[v], Mem{Base: ptrs[5], Disp: v * s.bytes()})
	}
	for _, p := range ptrs {
		ADDQ(Imm(uint64(u*s.bytes())), p)
	}
	SUBQ(Imm(uint64(u*s.width)), n)
	JMP(LabelRef("loop" + tag))
	Label("done" + tag)
	VZEROUPPER()
	RET()
}

// Shape of the FMA peak probe: probeChains independent accumulators, each
// advanced probeUnroll times per loop iteration.
const (
	probeChains = 12
	probeUnroll = 4
)

// fmaProbe emits fmaProbe<ISA>(n): n iterations of probeChains×probeUnroll
// VFMADD231PS, every chain independent of the others, so the FMA pipes
// never wait on a result (12 chains cover 2 pipes × 4-6 cycles latency).
// Nothing is stored; the operands stay normal floats (acc += 1·1).
func fmaProbe(s isa, one Mem) {
	TEXT("fmaProbe"+s.name, NOSPLIT, "func(n int)")
	Doc(fmt.Sprintf("fmaProbe%s runs n iterations of %d independent %d-bit FMAs (%d chains).", s.name, probeChains*probeUnroll, 32*s.width, probeChains))
	n := Load(Param("n"), GP64())
	x := s.vec(probeChains)
	VBROADCASTSS(one, x)
	for i := 0; i < probeChains; i++ {
		zero(s, s.vec(i))
	}
	Label("probe" + s.name)
	for u := 0; u < probeUnroll; u++ {
		for i := 0; i < probeChains; i++ {
			VFMADD231PS(x, x, s.vec(i))
		}
	}
	DECQ(n)
	JNZ(LabelRef("probe" + s.name))
	VZEROUPPER()
	RET()
}

// gather2 emits gather2<ISA>: d[o] = w0[o]·src[i0[o]] + w1[o]·src[i1[o]]
// for o < n, n a multiple of the vector width (the Go wrapper does the
// rest), each product rounded before the add: gather2Generic's bits. The
// indices are trusted: Taps2 checks them against the source length once.
func gather2(s isa) {
	name := streamHeader(s, "gather2", "func(d *float32, src *float32, i0 *int32, i1 *int32, w0 *float32, w1 *float32, n int)", "gather2Generic")
	src := Load(Param("src"), GP64())
	d, i0, i1 := Load(Param("d"), GP64()), Load(Param("i0"), GP64()), Load(Param("i1"), GP64())
	w0, w1 := Load(Param("w0"), GP64()), Load(Param("w1"), GP64())
	n := GP64()
	Load(Param("n"), n)
	// One vector a pass: the gathers' index and mask registers fill the
	// AVX2 register file.
	stream(s, name, []Register{d, i0, i1, w0, w1}, n, 0, 1, 5, func(off int, a VecPhysical, tmp func(int) VecPhysical) {
		b, ia, ib := tmp(0), tmp(1), tmp(2)
		if s.width == 16 {
			VMOVDQU32(Mem{Base: i0}, ia)
			VMOVDQU32(Mem{Base: i1}, ib)
			KXNORW(K1, K1, K1)
			KXNORW(K2, K2, K2)
			VGATHERDPS(Mem{Base: src, Index: ia, Scale: 4}, K1, a)
			VGATHERDPS(Mem{Base: src, Index: ib, Scale: 4}, K2, b)
		} else {
			ma, mb := tmp(3), tmp(4)
			VMOVDQU(Mem{Base: i0}, ia)
			VMOVDQU(Mem{Base: i1}, ib)
			VPCMPEQD(ma, ma, ma)
			VPCMPEQD(mb, mb, mb)
			VGATHERDPS(ma, Mem{Base: src, Index: ia, Scale: 4}, a)
			VGATHERDPS(mb, Mem{Base: src, Index: ib, Scale: 4}, b)
		}
		VMULPS(Mem{Base: w0}, a, a)
		VMULPS(Mem{Base: w1}, b, b)
		VADDPS(b, a, a)
		VMOVUPS(a, Mem{Base: d})
	})
}

// perm2 emits perm2AVX512: gather2's outputs, 16 at a time, when the
// sources of each 16 lie within 32 consecutive values: block b loads
// src[base[b] .. base[b]+31] as two vectors and picks its lanes with
// VPERMI2PS by the offsets r0, r1 (0..31) instead of two VGATHERDPS (a
// 2× upsampling's row: 9 sources for 16 outputs). d[16b+l] =
// w0·src[base[b]+r0[16b+l]] + w1·src[base[b]+r1[16b+l]], each product
// rounded before the add: gather2Generic's bits for i = base + r. n is a
// multiple of 16; Taps2 checks base[b]+32 against the source's length
// once.
func perm2() {
	s := avx512
	name := streamHeader(s, "perm2", "func(d *float32, src *float32, base *int32, r0 *int32, r1 *int32, w0 *float32, w1 *float32, n int)", "perm2Generic")
	src, d, base := Load(Param("src"), GP64()), Load(Param("d"), GP64()), Load(Param("base"), GP64())
	r0, r1 := Load(Param("r0"), GP64()), Load(Param("r1"), GP64())
	w0, w1 := Load(Param("w0"), GP64()), Load(Param("w1"), GP64())
	n := GP64()
	Load(Param("n"), n)
	at, lo, hi, a, b := GP64(), s.vec(0), s.vec(1), s.vec(2), s.vec(3)
	Label(name + "Loop")
	CMPQ(n, U32(16))
	JL(LabelRef(name + "Done"))
	MOVLQSX(Mem{Base: base}, at)
	VMOVUPS(Mem{Base: src, Index: at, Scale: 4}, lo)
	VMOVUPS(Mem{Base: src, Index: at, Scale: 4, Disp: 64}, hi)
	VMOVDQU32(Mem{Base: r0}, a)
	VMOVDQU32(Mem{Base: r1}, b)
	VPERMI2PS(hi, lo, a) // a = (lo ‖ hi)[a]
	VPERMI2PS(hi, lo, b)
	VMULPS(Mem{Base: w0}, a, a)
	VMULPS(Mem{Base: w1}, b, b)
	VADDPS(b, a, a)
	VMOVUPS(a, Mem{Base: d})
	for _, r := range []Register{d, r0, r1, w0, w1} {
		ADDQ(U32(64), r)
	}
	ADDQ(U32(4), base)
	SUBQ(U32(16), n)
	JMP(LabelRef(name + "Loop"))
	Label(name + "Done")
	VZEROUPPER()
	RET()
}

// streamHeader emits the TEXT, pragma and documentation of the streaming
// kernel base<ISA> with Go signature sig and Go twin twin, whose n must be
// a multiple of the vector width; it returns the kernel's name.
func streamHeader(s isa, base, sig, twin string) string {
	name := base + s.name
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(name + " is " + twin + " over n values (n a multiple of " + fmt.Sprint(s.width) + ").")
	return name
}

// stream emits the loop of a streaming kernel over n values, n a multiple
// of the vector width (the Go wrapper does the rest): body computes the
// vector at byte offset off into v, with temps scratch registers from tmp;
// registers from first on are the loop's. unroll vectors a pass (then one
// at a time for the rest); every pointer in ptrs advances past the vectors
// done.
func stream(s isa, name string, ptrs []Register, n Register, first, unroll, temps int, body func(off int, v VecPhysical, tmp func(int) VecPhysical)) {
	step := func(vecs int) {
		for _, r := range ptrs {
			ADDQ(U32(vecs*s.bytes()), r)
		}
		SUBQ(U32(vecs*s.width), n)
	}
	if unroll > 1 {
		Label(name + "Loop")
		CMPQ(n, U32(unroll*s.width))
		JL(LabelRef(name + "One"))
		for i := 0; i < unroll; i++ {
			body(i*s.bytes(), s.vec(first+i), func(j int) VecPhysical { return s.vec(first + unroll + temps*i + j) })
		}
		step(unroll)
		JMP(LabelRef(name + "Loop"))
	}
	Label(name + "One")
	CMPQ(n, U32(s.width))
	JL(LabelRef(name + "Done"))
	body(0, s.vec(first), func(j int) VecPhysical { return s.vec(first + 1 + j) })
	step(1)
	JMP(LabelRef(name + "One"))
	Label(name + "Done")
	VZEROUPPER()
	RET()
}

// scaleShift emits scaleShift<ISA>: d[i] = (x[i] − sub)·mul + add, each
// operation rounded (scaleShiftGeneric's bits), n a multiple of the width.
func scaleShift(s isa) {
	name := streamHeader(s, "scaleShift", "func(d *float32, x *float32, sub float32, mul float32, add float32, n int)", "scaleShiftGeneric")
	d, x := Load(Param("d"), GP64()), Load(Param("x"), GP64())
	n := GP64()
	Load(Param("n"), n)
	sub, mul, add := s.vec(0), s.vec(1), s.vec(2)
	VBROADCASTSS(NewParamAddr("sub", 16), sub)
	VBROADCASTSS(NewParamAddr("mul", 20), mul)
	VBROADCASTSS(NewParamAddr("add", 24), add)
	stream(s, name, []Register{d, x}, n, 3, 4, 2, func(off int, v VecPhysical, _ func(int) VecPhysical) {
		VMOVUPS(Mem{Base: x}.Offset(off), v)
		VSUBPS(sub, v, v)
		VMULPS(mul, v, v)
		VADDPS(add, v, v)
		VMOVUPS(v, Mem{Base: d}.Offset(off))
	})
}

// normElem emits normElem<ISA>: d[i] = ((x[i] − sub)·mul)·sc[i] + bs[i],
// each operation rounded (normElemGeneric's bits), n a multiple of the
// width.
func normElem(s isa) {
	name := streamHeader(s, "normElem", "func(d *float32, x *float32, sc *float32, bs *float32, sub float32, mul float32, n int)", "normElemGeneric")
	d, x, sc, bs := Load(Param("d"), GP64()), Load(Param("x"), GP64()), Load(Param("sc"), GP64()), Load(Param("bs"), GP64())
	n := GP64()
	Load(Param("n"), n)
	sub, mul := s.vec(0), s.vec(1)
	VBROADCASTSS(NewParamAddr("sub", 32), sub)
	VBROADCASTSS(NewParamAddr("mul", 36), mul)
	stream(s, name, []Register{d, x, sc, bs}, n, 2, 4, 2, func(off int, v VecPhysical, _ func(int) VecPhysical) {
		VMOVUPS(Mem{Base: x}.Offset(off), v)
		VSUBPS(sub, v, v)
		VMULPS(mul, v, v)
		VMULPS(Mem{Base: sc}.Offset(off), v, v)
		VADDPS(Mem{Base: bs}.Offset(off), v, v)
		VMOVUPS(v, Mem{Base: d}.Offset(off))
	})
}

// moments emits moments<ISA>: for i < n (a multiple of 16) it adds
// x[i]−k to acc[i%16] and its square (rounded, then added) to acc[16 +
// i%16], in float64: momentsGeneric's bits, whatever the vector width.
func moments(s isa) {
	name := "moments" + s.name
	TEXT(name, NOSPLIT, "func(acc *float64, x *float32, k float64, n int)")
	Pragma("noescape")
	Doc(name + " is momentsGeneric over n values (n a multiple of 16).")
	acc, x := Load(Param("acc"), GP64()), Load(Param("x"), GP64())
	n := GP64()
	Load(Param("n"), n)
	// Accumulators: 16 sums then 16 sums of squares, 8 (ZMM) or 4 (YMM)
	// float64 lanes each.
	per := s.width / 2 // float64 lanes per register
	na := 16 / per
	sum := make([]VecPhysical, na)
	sq := make([]VecPhysical, na)
	for j := 0; j < na; j++ {
		sum[j], sq[j] = s.vec(j), s.vec(na+j)
		VMOVUPD(Mem{Base: acc}.Offset(8*per*j), sum[j])
		VMOVUPD(Mem{Base: acc}.Offset(128+8*per*j), sq[j])
	}
	k := s.vec(2 * na)
	VBROADCASTSD(NewParamAddr("k", 16), k)
	a, b := s.vec(2*na+1), s.vec(2*na+2)
	Label(name + "Loop")
	CMPQ(n, U32(16))
	JL(LabelRef(name + "Done"))
	for j := 0; j < na; j++ {
		// per floats -> per doubles.
		half := a
		if s.width == 16 {
			VCVTPS2PD(Mem{Base: x}.Offset(4*per*j), half)
		} else {
			VCVTPS2PD(Mem{Base: x}.Offset(4*per*j), half)
		}
		VSUBPD(k, half, half)
		VADDPD(half, sum[j], sum[j])
		VMULPD(half, half, b)
		VADDPD(b, sq[j], sq[j])
	}
	ADDQ(U32(64), x)
	SUBQ(U32(16), n)
	JMP(LabelRef(name + "Loop"))
	Label(name + "Done")
	for j := 0; j < na; j++ {
		VMOVUPD(sum[j], Mem{Base: acc}.Offset(8*per*j))
		VMOVUPD(sq[j], Mem{Base: acc}.Offset(128+8*per*j))
	}
	VZEROUPPER()
	RET()
}

// relu emits relu<ISA>: d[i] = max(0, d[i]) + 0 for i < n, in place, n a
// multiple of the width. VMAXPS returns its second operand when either is
// NaN, so a NaN stays NaN; the +0 turns −0 into +0. That is reluGeneric's
// result, bit for bit, for every input but a signalling NaN (which the add
// quiets).
func relu(s isa) {
	name := streamHeader(s, "relu", "func(d *float32, n int)", "reluGeneric")
	d := Load(Param("d"), GP64())
	n := GP64()
	Load(Param("n"), n)
	zero := s.vec(0)
	VXORPS(zero, zero, zero)
	stream(s, name, []Register{d}, n, 1, 4, 2, func(off int, v VecPhysical, _ func(int) VecPhysical) {
		m := Mem{Base: d}.Offset(off)
		VMAXPS(m, zero, v)
		VADDPS(zero, v, v)
		VMOVUPS(v, m)
	})
}

// mulAdd emits mulAdd<ISA>: d[i] = a[i]·b[i] + c[i] for i < n (a multiple
// of the width), the product rounded before the add (VMULPS then VADDPS,
// no FMA): mulAddGeneric's bits.
func mulAdd(s isa) {
	name := streamHeader(s, "mulAdd", "func(d *float32, a *float32, b *float32, c *float32, n int)", "mulAddGeneric")
	d, a, b, c := Load(Param("d"), GP64()), Load(Param("a"), GP64()), Load(Param("b"), GP64()), Load(Param("c"), GP64())
	n := GP64()
	Load(Param("n"), n)
	stream(s, name, []Register{d, a, b, c}, n, 0, 4, 2, func(off int, v VecPhysical, _ func(int) VecPhysical) {
		VMOVUPS(Mem{Base: a}.Offset(off), v)
		VMULPS(Mem{Base: b}.Offset(off), v, v)
		VADDPS(Mem{Base: c}.Offset(off), v, v)
		VMOVUPS(v, Mem{Base: d}.Offset(off))
	})
}

// blend emits blend<ISA>: d[i] = wa·a[i] + wb·b[i] for i < n (a multiple
// of the width), each product rounded before the add: blendGeneric's bits.
func blend(s isa) {
	name := streamHeader(s, "blend", "func(d *float32, a *float32, b *float32, wa float32, wb float32, n int)", "blendGeneric")
	d, a, b := Load(Param("d"), GP64()), Load(Param("a"), GP64()), Load(Param("b"), GP64())
	n := GP64()
	Load(Param("n"), n)
	wa, wb := s.vec(0), s.vec(1)
	VBROADCASTSS(NewParamAddr("wa", 24), wa)
	VBROADCASTSS(NewParamAddr("wb", 28), wb)
	stream(s, name, []Register{d, a, b}, n, 2, 4, 2, func(off int, v VecPhysical, tmp func(int) VecPhysical) {
		u := tmp(0)
		VMULPS(Mem{Base: a}.Offset(off), wa, v)
		VMULPS(Mem{Base: b}.Offset(off), wb, u)
		VADDPS(u, v, v)
		VMOVUPS(v, Mem{Base: d}.Offset(off))
	})
}

// leakyRelu emits leakyRelu<ISA>: d[i] = alpha·d[i] where d[i]'s sign bit
// is set (−0 and negative NaNs included), else d[i], in place, n a multiple
// of the width: leakyReluGeneric's bits. AVX2 blends on the sign bit;
// AVX-512 compares the bits as integers with 0 and multiplies under the
// mask.
func leakyRelu(s isa) {
	name := streamHeader(s, "leakyRelu", "func(d *float32, alpha float32, n int)", "leakyReluGeneric")
	d := Load(Param("d"), GP64())
	n := GP64()
	Load(Param("n"), n)
	alpha, zero := s.vec(0), s.vec(1)
	VBROADCASTSS(NewParamAddr("alpha", 8), alpha)
	VXORPS(zero, zero, zero)
	stream(s, name, []Register{d}, n, 2, 4, 2, func(off int, v VecPhysical, tmp func(int) VecPhysical) {
		m := Mem{Base: d}.Offset(off)
		VMOVUPS(m, v)
		if s.width == 16 {
			VPCMPGTD(v, zero, K1) // 0 > bits(v): the sign bit is set
			VMULPS(alpha, v, K1, v)
		} else {
			t := tmp(0)
			VMULPS(alpha, v, t)
			VBLENDVPS(v, t, v, v) // t where v's sign bit is set
		}
		VMOVUPS(v, m)
	})
}

// maxOf emits r = maxGeneric(x, y) lane by lane (x and y are kept): y where
// y is NaN or greater, else x where x is NaN or greater, else x AND y (equal
// values; of ±0 the AND is +0 unless both are −0), the Go builtin's rule.
// tmp gives scratch registers.
func maxOf(s isa, x, y, r VecPhysical, tmp func(int) VecPhysical) {
	if s.width == 16 {
		VCMPPS(U8(3), y, y, K1)    // y is NaN
		VCMPPS(U8(0x11), y, x, K3) // x < y
		KORW(K3, K1, K1)
		VCMPPS(U8(3), x, x, K2)    // x is NaN
		VCMPPS(U8(0x1E), y, x, K4) // x > y
		KORW(K4, K2, K2)
		VPANDD(y, x, r)
		VMOVAPS(x, K2, r)
		VMOVAPS(y, K1, r)
		return
	}
	m1, m2, t := tmp(0), tmp(1), tmp(2)
	VCMPPS(U8(3), y, y, m1)
	VCMPPS(U8(0x11), y, x, t)
	VORPS(t, m1, m1)
	VCMPPS(U8(3), x, x, m2)
	VCMPPS(U8(0x1E), y, x, t)
	VORPS(t, m2, m2)
	VANDPS(y, x, r)
	VBLENDVPS(m2, x, r, r)
	VBLENDVPS(m1, y, r, r)
}

// max2 emits max2<ISA>: d[i] = maxGeneric(a[i], b[i]) for i < n, n a
// multiple of the width.
func max2(s isa) {
	name := streamHeader(s, "max2", "func(d *float32, a *float32, b *float32, n int)", "max2Generic")
	d, a, b := Load(Param("d"), GP64()), Load(Param("a"), GP64()), Load(Param("b"), GP64())
	n := GP64()
	Load(Param("n"), n)
	// One vector a pass: maxOf takes 3 scratch registers besides x and y.
	stream(s, name, []Register{d, a, b}, n, 0, 1, 5, func(off int, r VecPhysical, tmp func(int) VecPhysical) {
		x, y := tmp(0), tmp(1)
		VMOVUPS(Mem{Base: a}, x)
		VMOVUPS(Mem{Base: b}, y)
		maxOf(s, x, y, r, func(j int) VecPhysical { return tmp(2 + j) })
		VMOVUPS(r, Mem{Base: d})
	})
}

// maxPairs emits maxPairs<ISA>: d[o] = maxGeneric(src[2o], src[2o+1]) for
// o < n, n a multiple of the width: a 2-wide, stride-2 max pool along a
// row. The even and odd values are separated by VPERMT2PS (AVX-512, with
// the index tables in evenOdd) or by VSHUFPS and VPERMPD (AVX2).
func maxPairs(s isa, evenOdd Mem) {
	name := streamHeader(s, "maxPairs", "func(d *float32, src *float32, n int)", "maxPairsGeneric")
	d, src := Load(Param("d"), GP64()), Load(Param("src"), GP64())
	n := GP64()
	Load(Param("n"), n)
	lo, hi, x, y, r := s.vec(0), s.vec(1), s.vec(2), s.vec(3), s.vec(4)
	var ie, io VecPhysical
	if s.width == 16 {
		ie, io = s.vec(8), s.vec(9)
		VMOVDQU32(evenOdd, ie)
		VMOVDQU32(evenOdd.Offset(64), io)
	}
	Label(name + "Loop")
	CMPQ(n, U32(s.width))
	JL(LabelRef(name + "Done"))
	VMOVUPS(Mem{Base: src}, lo)
	VMOVUPS(Mem{Base: src}.Offset(s.bytes()), hi)
	if s.width == 16 {
		VMOVAPS(lo, x)
		VPERMT2PS(hi, ie, x) // the even values of lo:hi, in order
		VMOVAPS(lo, y)
		VPERMT2PS(hi, io, y) // the odd ones
	} else {
		VSHUFPS(U8(0x88), hi, lo, x) // even: lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6
		VPERMPD(U8(0xD8), x, x)      // -> lo0 lo2 lo4 lo6 hi0 hi2 hi4 hi6
		VSHUFPS(U8(0xDD), hi, lo, y)
		VPERMPD(U8(0xD8), y, y)
	}
	maxOf(s, x, y, r, func(j int) VecPhysical { return s.vec(5 + j) })
	VMOVUPS(r, Mem{Base: d})
	ADDQ(U32(s.bytes()), d)
	ADDQ(U32(2*s.bytes()), src)
	SUBQ(U32(s.width), n)
	JMP(LabelRef(name + "Loop"))
	Label(name + "Done")
	VZEROUPPER()
	RET()
}
