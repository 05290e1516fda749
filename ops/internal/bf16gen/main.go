// Command bf16gen generates ops/bf16_amd64.s, the AVX512_BF16 kernels of
// the bfloat16 precision option, and their Go declarations with avo. Run it
// through go generate in ops:
//
//	go generate ./ops
//
// Neither the Go assembler nor avo knows the AVX512_BF16 instructions, so
// VDPBF16PS and VCVTNE2PS2BF16 are emitted as their EVEX bytes (register
// operands only; encoders in evex.go, checked against GNU as in
// main_test.go), each after a comment naming the instruction. Everything
// else is ordinary avo.
//
// The GEMM is the float32 AVX-512 kernel of asmgen (8 rows × 48 columns of
// C in 24 ZMM accumulators, the k loop unrolled by two, masked column
// tails) with each k a pair of bfloat16 values: A and B hold one 32-bit
// word (lo | hi<<16) per pair of k, so its B rows are addressed exactly as
// the float32 kernel's and each VDPBF16PS does the work of two FMAs.
package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/ir"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// panelRows must match ops.panelRows: the stride (in words) between
// consecutive k pairs of a packed A panel.
const panelRows = 8

var zmm = []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
	Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}

func main() {
	ConstraintExpr("amd64,!purego")
	gemm()
	pairs()
	probe()
	Generate()
}

// vdpbf16ps emits VDPBF16PS src2, src1, acc (Go operand order): for each
// lane, acc += src1.hi·src2.hi, then acc += src1.lo·src2.lo.
func vdpbf16ps(src2, src1, acc VecPhysical) {
	raw(fmt.Sprintf("VDPBF16PS %s, %s, %s", src2.Asm(), src1.Asm(), acc.Asm()), encVDPBF16PS(num(acc), num(src1), num(src2)))
}

// vcvtne2ps2bf16 emits VCVTNE2PS2BF16 src2, src1, dst: dst's 16 low words
// are src2 rounded to bfloat16, its 16 high words src1.
func vcvtne2ps2bf16(src2, src1, dst VecPhysical) {
	raw(fmt.Sprintf("VCVTNE2PS2BF16 %s, %s, %s", src2.Asm(), src1.Asm(), dst.Asm()), encVCVTNE2PS2BF16(num(dst), num(src1), num(src2)))
}

// raw emits an instruction's bytes as LONG/WORD/BYTE directives after a
// comment naming it.
func raw(what string, b []byte) {
	Comment(what)
	for len(b) > 0 {
		switch {
		case len(b) >= 4:
			Instruction(&ir.Instruction{Opcode: "LONG", Operands: []Op{U32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)}})
			b = b[4:]
		case len(b) >= 2:
			Instruction(&ir.Instruction{Opcode: "WORD", Operands: []Op{U16(uint16(b[0]) | uint16(b[1])<<8)}})
			b = b[2:]
		default:
			Instruction(&ir.Instruction{Opcode: "BYTE", Operands: []Op{U8(b[0])}})
			b = b[1:]
		}
	}
}

func num(v VecPhysical) int {
	for i, z := range zmm {
		if z == v {
			return i
		}
	}
	panic("not a ZMM register: " + v.Asm())
}

// gemm emits gemmPanelBF16AVX512: one packed panel's rows of C (fewer if
// rows < panelRows; rows past that are computed but never stored, and their
// bias and C values are never read) over all n columns, summing k pairs.
//
// The column loop runs full tiles of 3 vectors, then the remaining columns
// one masked vector at a time, so no b word past offs[k]+n-1 and no c
// element past column n-1 is touched. Every column's sum is the same chain
// of VDPBF16PS over k = 0..K-1 whichever branch covers it.
func gemm() {
	const (
		width    = 16
		nv       = 3
		rows     = 8
		bytes    = 4 * width
		tileCols = width * nv
	)
	TEXT("gemmPanelBF16AVX512", NOSPLIT, "func(c *float32, ldc int, a *uint32, bias *float32, b *uint32, offs *int32, k int, n int, rows int, mode int)")
	Pragma("noescape")
	Doc("gemmPanelBF16AVX512 computes up to 8 rows (one packed panel) of ConvGemmBF16 over n columns.",
		"mode 0 starts from zero, 1 from bias[r], 2 from c (accumulate).",
		"a points at the first row's A pair for k = 0 (stride 8 words per k); k must be ≥ 1.")

	cj := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	bj := Load(Param("b"), GP64())
	n := Load(Param("n"), GP64())

	acc := func(r, v int) VecPhysical { return zmm[r*nv+v] }
	bv := func(v int) VecPhysical { return zmm[rows*nv+v] }
	bc := func(i int) VecPhysical { return zmm[rows*nv+nv+i%4] }

	tile := func(prefix string, nvec int, masked bool) {
		load := func(m Mem, dst VecPhysical) {
			if masked {
				VMOVUPS_Z(m, K1, dst)
			} else {
				VMOVUPS(m, dst)
			}
		}
		store := func(src VecPhysical, m Mem) {
			if masked {
				VMOVUPS(src, K1, m)
				return
			}
			// Two 256-bit halves, as the float32 kernel stores (a burst
			// of ZMM stores stalls the FMAs on Zen 5).
			VMOVUPS(src.AsY(), m)
			VEXTRACTF64X4(U8(1), src, m.Offset(32))
		}
		nrows := Load(Param("rows"), GP64())
		mode := Load(Param("mode"), GP64())
		for r := 0; r < rows; r++ {
			for v := 0; v < nvec; v++ {
				VPXORD(acc(r, v), acc(r, v), acc(r, v))
			}
		}
		CMPQ(mode, Imm(1))
		JL(LabelRef(prefix + "_k"))
		JE(LabelRef(prefix + "_bias"))
		cr := GP64()
		MOVQ(cj, cr)
		for r := 0; r < rows; r++ {
			if r > 0 {
				CMPQ(nrows, Imm(uint64(r)))
				JLE(LabelRef(prefix + "_k"))
				ADDQ(ldc, cr)
			}
			for v := 0; v < nvec; v++ {
				load(Mem{Base: cr, Disp: v * bytes}, acc(r, v))
			}
		}
		JMP(LabelRef(prefix + "_k"))
		Label(prefix + "_bias")
		bias := Load(Param("bias"), GP64())
		for r := 0; r < rows; r++ {
			if r > 0 {
				CMPQ(nrows, Imm(uint64(r)))
				JLE(LabelRef(prefix + "_k"))
			}
			VBROADCASTSS(Mem{Base: bias, Disp: 4 * r}, acc(r, 0))
			for v := 1; v < nvec; v++ {
				VMOVAPS(acc(r, 0), acc(r, v))
			}
		}

		// The k loop: B pair rows come from b + offs[k] + j.
		Label(prefix + "_k")
		ap := Load(Param("a"), GP64())
		op := Load(Param("offs"), GP64())
		kc := Load(Param("k"), GP64())
		o := GP64()
		step := func(i int) {
			MOVLQSX(Mem{Base: op, Disp: 4 * i}, o)
			for v := 0; v < nvec; v++ {
				load(Mem{Base: bj, Index: o, Scale: 4, Disp: v * bytes}, bv(v))
			}
			for r := 0; r < rows; r++ {
				// A pair is one 32-bit word: VBROADCASTSS copies it
				// to every lane bit for bit.
				VBROADCASTSS(Mem{Base: ap, Disp: 4*r + 4*panelRows*i}, bc(r))
				for v := 0; v < nvec; v++ {
					vdpbf16ps(bc(r), bv(v), acc(r, v))
				}
			}
		}
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

		MOVQ(cj, cr)
		for r := 0; r < rows; r++ {
			if r > 0 {
				CMPQ(nrows, Imm(uint64(r)))
				JLE(LabelRef(prefix + "_done"))
				ADDQ(ldc, cr)
			}
			for v := 0; v < nvec; v++ {
				store(acc(r, v), Mem{Base: cr, Disp: v * bytes})
			}
		}
		Label(prefix + "_done")
	}

	Label("fullBF16")
	CMPQ(n, Imm(tileCols))
	JL(LabelRef("tailBF16"))
	tile("fullBF16t", nv, false)
	ADDQ(Imm(4*tileCols), cj)
	ADDQ(Imm(4*tileCols), bj)
	SUBQ(Imm(tileCols), n)
	JMP(LabelRef("fullBF16"))

	Label("tailBF16")
	CMPQ(n, Imm(0))
	JLE(LabelRef("retBF16"))
	m := GP64()
	MOVQ(n, m)
	w := GP64()
	MOVQ(U32(width), w)
	CMPQ(m, w)
	CMOVQGT(w, m)
	bits := GP32()
	MOVL(U32(0xffff), bits)
	BZHIL(m.As32(), bits, bits)
	KMOVW(bits, K1)
	tile("tailBF16t", 1, true)
	ADDQ(Imm(bytes), cj)
	ADDQ(Imm(bytes), bj)
	SUBQ(Imm(width), n)
	JMP(LabelRef("tailBF16"))

	Label("retBF16")
	VZEROUPPER()
	RET()
}

// pairs emits bf16PairsAVX512: dst[j] = bf16(lo[j]) | bf16(hi[j])<<16 for
// j < n, with VCVTNE2PS2BF16's rounding (to nearest even; denormals to
// signed zero; NaN to a quiet NaN); hi == nil stands for zeros. The words
// are interleaved by one VPERMW per 16 pairs. dst may be lo (in place: each
// vector of lo and hi is read before the vector of dst at the same place
// is written).
func pairs() {
	// VPERMW index: word 2i of the result from word i (lo), word 2i+1 from
	// word 16+i (hi).
	idx := GLOBL("bf16pairidx", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(4*i, U32(uint32(i)|uint32(16+i)<<16))
	}
	TEXT("bf16PairsAVX512", NOSPLIT, "func(dst *uint32, lo *float32, hi *float32, n int)")
	Pragma("noescape")
	Doc("bf16PairsAVX512 writes dst[j] = bf16(lo[j]) | bf16(hi[j])<<16 for j < n (hi nil: zeros).")
	dst := Load(Param("dst"), GP64())
	lo := Load(Param("lo"), GP64())
	hi := Load(Param("hi"), GP64())
	n := Load(Param("n"), GP64())
	perm := Z31
	VMOVDQU32(idx, perm)
	zero := Z30
	VPXORD(zero, zero, zero)
	o := GP64()
	XORQ(o, o)

	// body converts one vector at byte offset o (masked by K1 if masked);
	// withHi false takes the high words from zero.
	body := func(withHi, masked bool, u int) {
		a, b, t := zmm[3*u], zmm[3*u+1], zmm[3*u+2]
		m := Mem{Base: lo, Index: o, Scale: 1, Disp: 64 * u}
		if masked {
			VMOVUPS_Z(m, K1, a)
		} else {
			VMOVUPS(m, a)
		}
		src1 := zero
		if withHi {
			m := Mem{Base: hi, Index: o, Scale: 1, Disp: 64 * u}
			if masked {
				VMOVUPS_Z(m, K1, b)
			} else {
				VMOVUPS(m, b)
			}
			src1 = b
		}
		vcvtne2ps2bf16(a, src1, t)
		VPERMW(t, perm, t)
		d := Mem{Base: dst, Index: o, Scale: 1, Disp: 64 * u}
		if masked {
			VMOVDQU32(t, K1, d)
		} else {
			VMOVDQU32(t, d)
		}
	}
	const unroll = 4
	loops := func(withHi bool, p string) {
		Label(p + "loop")
		CMPQ(n, Imm(16*unroll))
		JL(LabelRef(p + "one"))
		for u := 0; u < unroll; u++ {
			body(withHi, false, u)
		}
		ADDQ(U32(64*unroll), o)
		SUBQ(Imm(16*unroll), n)
		JMP(LabelRef(p + "loop"))
		Label(p + "one")
		CMPQ(n, Imm(0))
		JLE(LabelRef("pairsdone"))
		m := GP64()
		MOVQ(n, m)
		w := GP64()
		MOVQ(U32(16), w)
		CMPQ(m, w)
		CMOVQGT(w, m)
		bits := GP32()
		MOVL(U32(0xffff), bits)
		BZHIL(m.As32(), bits, bits)
		KMOVW(bits, K1)
		body(withHi, true, 0)
		ADDQ(Imm(64), o)
		SUBQ(Imm(16), n)
		JMP(LabelRef(p + "one"))
	}
	TESTQ(hi, hi)
	JZ(LabelRef("nohi"))
	loops(true, "hi")
	Label("nohi")
	loops(false, "lo")
	Label("pairsdone")
	VZEROUPPER()
	RET()
}

// probe emits dpProbeBF16(n): n iterations of 48 independent VDPBF16PS in
// 12 chains (2 bfloat16 products per float32 lane each), the bfloat16
// counterpart of asmgen's fmaProbe. The operands are zero.
func probe() {
	TEXT("dpProbeBF16", NOSPLIT, "func(n int)")
	Doc("dpProbeBF16 runs n iterations of 48 independent 512-bit VDPBF16PS (12 chains).")
	n := Load(Param("n"), GP64())
	const chains = 12
	for i := 0; i <= chains; i++ {
		VPXORD(zmm[i], zmm[i], zmm[i])
	}
	Label("dpprobe")
	for u := 0; u < 4; u++ {
		for i := 0; i < chains; i++ {
			vdpbf16ps(zmm[chains], zmm[chains], zmm[i])
		}
	}
	DECQ(n)
	JNZ(LabelRef("dpprobe"))
	VZEROUPPER()
	RET()
}
