// Command wingen generates ops/winograd_amd64.s, the AVX2 input and output
// transforms of the Winograd F(2×2, 3×3) convolution, and their Go
// declarations with avo. Run it through go generate in ops:
//
//	go generate ./ops
//
// Each transform handles one group of 8 tiles of a tile row, one tile per
// lane. The lane order is the one the even/odd VSHUFPS deinterleave of the
// input rows produces, tiles 0 1 4 5 2 3 6 7, which VUNPCKLPS/VUNPCKHPS of
// the output undo without a cross-lane permute. The arithmetic, operation
// for operation, is that of the Go twins winoInGo and winoOutGo.
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("amd64,!purego")
	winoIn()
	winoOut()
	Generate()
}

// winoIn emits winoInAVX2: V = Bᵀ d B for ng consecutive groups of 8 tiles
// of one channel.
func winoIn() {
	TEXT("winoInAVX2", NOSPLIT, "func(dst *float32, xs int, src *float32, rs int, ng int)")
	Pragma("noescape")
	Doc("winoInAVX2 is winoInGo: for g < ng it reads src[16g + r*rs + 0..17] (r < 4)",
		"and writes dst[ξ*xs + 8g + lane] (ξ < 16, lane < 8); ng must be ≥ 1.")

	dst := Load(Param("dst"), GP64())
	xs := Load(Param("xs"), GP64())
	SHLQ(U8(2), xs)
	src := Load(Param("src"), GP64())
	rs := Load(Param("rs"), GP64())
	SHLQ(U8(2), rs)
	ng := Load(Param("ng"), GP64())

	xs3 := GP64()
	LEAQ(Mem{Base: xs, Index: xs, Scale: 2}, xs3)
	rs3 := GP64()
	LEAQ(Mem{Base: rs, Index: rs, Scale: 2}, rs3)
	// p[a] points at ξ = 4a.
	var p [4]Register
	p[0] = dst
	for a := 1; a < 4; a++ {
		p[a] = GP64()
		LEAQ(Mem{Base: p[a-1], Index: xs, Scale: 4}, p[a])
	}
	xsIdx := func(base Register, q int) Mem {
		switch q {
		case 0:
			return Mem{Base: base}
		case 1:
			return Mem{Base: base, Index: xs, Scale: 1}
		case 2:
			return Mem{Base: base, Index: xs, Scale: 2}
		}
		return Mem{Base: base, Index: xs3, Scale: 1}
	}
	row := func(r int) Mem {
		switch r {
		case 0:
			return Mem{Base: src}
		case 1:
			return Mem{Base: src, Index: rs, Scale: 1}
		case 2:
			return Mem{Base: src, Index: rs, Scale: 2}
		}
		return Mem{Base: src, Index: rs3, Scale: 1}
	}
	// rowT returns t[r][0..3] = d B for input row r.
	rowT := func(r int) [4]VecVirtual {
		m := row(r)
		a, b := YMM(), YMM()
		VMOVUPS(m, a)
		VMOVUPS(m.Offset(32), b)
		d0, d1 := YMM(), YMM()
		VSHUFPS(U8(0x88), b, a, d0)
		VSHUFPS(U8(0xDD), b, a, d1)
		a2, b2 := YMM(), YMM()
		VMOVUPS(m.Offset(8), a2)
		VMOVUPS(m.Offset(40), b2)
		d2, d3 := YMM(), YMM()
		VSHUFPS(U8(0x88), b2, a2, d2)
		VSHUFPS(U8(0xDD), b2, a2, d3)
		var t [4]VecVirtual
		for i := range t {
			t[i] = YMM()
		}
		VSUBPS(d2, d0, t[0]) // d0 - d2
		VADDPS(d2, d1, t[1]) // d1 + d2
		VSUBPS(d1, d2, t[2]) // d2 - d1
		VSUBPS(d3, d1, t[3]) // d1 - d3
		return t
	}

	Label("winoInLoop")
	t1 := rowT(1)
	t2 := rowT(2)
	for q := 0; q < 4; q++ {
		v := YMM()
		VADDPS(t2[q], t1[q], v) // t1 + t2
		VMOVUPS(v, xsIdx(p[1], q))
		w := YMM()
		VSUBPS(t1[q], t2[q], w) // t2 - t1
		VMOVUPS(w, xsIdx(p[2], q))
	}
	t0 := rowT(0)
	for q := 0; q < 4; q++ {
		v := YMM()
		VSUBPS(t2[q], t0[q], v) // t0 - t2
		VMOVUPS(v, xsIdx(p[0], q))
	}
	t3 := rowT(3)
	for q := 0; q < 4; q++ {
		v := YMM()
		VSUBPS(t3[q], t1[q], v) // t1 - t3
		VMOVUPS(v, xsIdx(p[3], q))
	}
	ADDQ(U8(64), src)
	for a := 0; a < 4; a++ {
		ADDQ(U8(32), p[a])
	}
	DECQ(ng)
	JNZ(LabelRef("winoInLoop"))
	VZEROUPPER()
	RET()
}

// winoOut emits winoOutAVX2: Y = Aᵀ M A for `rows` rows of ng consecutive
// groups of 8 tiles.
func winoOut() {
	TEXT("winoOutAVX2", NOSPLIT, "func(out *float32, ldc int, wp int, m *float32, xs int, ldm int, bias *float32, rows int, mode int, ng int)")
	Pragma("noescape")
	Doc("winoOutAVX2 is winoOutGo: for r < rows and g < ng it reads m[ξ*xs + r*ldm + 8g + lane]",
		"and writes out[r*ldc + dy*wp + 16g + 0..15] (dy < 2), adding bias[r] (mode 1)",
		"or the old out value (mode 2); rows and ng must be ≥ 1.")

	out := Load(Param("out"), GP64())
	wp := Load(Param("wp"), GP64())
	SHLQ(U8(2), wp)
	mp := Load(Param("m"), GP64())
	xs := Load(Param("xs"), GP64())
	SHLQ(U8(2), xs)
	bias := Load(Param("bias"), GP64())
	// After a row's ng groups, out and m step to the next row.
	ng := Load(Param("ng"), GP64())
	outStep := Load(Param("ldc"), GP64())
	SHLQ(U8(2), outStep)
	mStep := Load(Param("ldm"), GP64())
	SHLQ(U8(2), mStep)
	t := GP64()
	MOVQ(ng, t)
	SHLQ(U8(5), t)
	SUBQ(t, mStep)
	SHLQ(U8(1), t)
	SUBQ(t, outStep)

	xs3 := GP64()
	LEAQ(Mem{Base: xs, Index: xs, Scale: 2}, xs3)
	var p [4]Register
	p[0] = mp
	for a := 1; a < 4; a++ {
		p[a] = GP64()
		LEAQ(Mem{Base: p[a-1], Index: xs, Scale: 4}, p[a])
	}
	xsIdx := func(base Register, q int) Mem {
		switch q {
		case 0:
			return Mem{Base: base}
		case 1:
			return Mem{Base: base, Index: xs, Scale: 1}
		case 2:
			return Mem{Base: base, Index: xs, Scale: 2}
		}
		return Mem{Base: base, Index: xs3, Scale: 1}
	}

	Label("winoOutRow")
	g := GP64()
	MOVQ(ng, g)
	Label("winoOutGroup")
	var a, b [4]VecVirtual
	for i := 0; i < 4; i++ {
		a[i], b[i] = YMM(), YMM()
		VMOVUPS(xsIdx(p[i], 0), a[i])
		VADDPS(xsIdx(p[i], 1), a[i], a[i]) // m0 + m1
		VMOVUPS(xsIdx(p[i], 1), b[i])
		VSUBPS(xsIdx(p[i], 2), b[i], b[i]) // m1 - m2
		VADDPS(xsIdx(p[i], 2), a[i], a[i]) // + m2
		VSUBPS(xsIdx(p[i], 3), b[i], b[i]) // - m3
	}
	// sum3(x) = x0 + x1 + x2, diff3(x) = x1 - x2 - x3.
	sum3 := func(x [4]VecVirtual) VecVirtual {
		y := YMM()
		VADDPS(x[1], x[0], y)
		VADDPS(x[2], y, y)
		return y
	}
	diff3 := func(x [4]VecVirtual) VecVirtual {
		y := YMM()
		VSUBPS(x[2], x[1], y)
		VSUBPS(x[3], y, y)
		return y
	}
	y00, y01, y10, y11 := sum3(a), sum3(b), diff3(a), diff3(b)
	var o [4]VecVirtual // row 0 cols 0..7, 8..15; row 1 likewise
	for i := range o {
		o[i] = YMM()
	}
	VUNPCKLPS(y01, y00, o[0])
	VUNPCKHPS(y01, y00, o[1])
	VUNPCKLPS(y11, y10, o[2])
	VUNPCKHPS(y11, y10, o[3])
	outAt := func(i int) Mem {
		m := Mem{Base: out}
		if i >= 2 {
			m = Mem{Base: out, Index: wp, Scale: 1}
		}
		return m.Offset(32 * (i % 2))
	}
	mode := NewParamAddr("mode", 64)
	CMPQ(mode, U8(1))
	JL(LabelRef("winoOutStore"))
	JE(LabelRef("winoOutBias"))
	for i := range o {
		VADDPS(outAt(i), o[i], o[i])
	}
	JMP(LabelRef("winoOutStore"))
	Label("winoOutBias")
	bb := YMM()
	VBROADCASTSS(Mem{Base: bias}, bb)
	for i := range o {
		VADDPS(o[i], bb, o[i])
	}
	Label("winoOutStore")
	for i := range o {
		VMOVUPS(o[i], outAt(i))
	}
	ADDQ(U8(64), out)
	for i := 0; i < 4; i++ {
		ADDQ(U8(32), p[i])
	}
	DECQ(g)
	JNZ(LabelRef("winoOutGroup"))

	ADDQ(outStep, out)
	for i := 0; i < 4; i++ {
		ADDQ(mStep, p[i])
	}
	ADDQ(U8(4), bias)
	DECQ(NewParamAddr("rows", 56))
	JNZ(LabelRef("winoOutRow"))
	VZEROUPPER()
	RET()
}
