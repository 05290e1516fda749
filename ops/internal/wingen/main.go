// Command wingen generates ops/winograd_amd64.s, the AVX2 and AVX-512 input
// and output transforms of the Winograd F(2×2, 3×3) convolution, and their
// Go declarations with avo. Run it through go generate in ops:
//
//	go generate ./ops
//
// A transform handles groups of 8 tiles of a tile row, one tile per lane.
// The lane order is the one the even/odd VSHUFPS deinterleave of the input
// rows produces, tiles 0 1 4 5 2 3 6 7, which VUNPCKLPS/VUNPCKHPS of the
// output undo without a cross-lane permute. The AVX-512 versions handle two
// groups per ZMM register in the same layout, one group per 256-bit half
// (rows loaded half by half, so the in-lane shuffles deinterleave both; a
// VSHUFF32X4 joins the unpacked output halves), and a last odd group with
// the AVX2 code. Both are mostly bound by L2 traffic (V and M do not fit
// L1): the AVX-512 versions are only ~5-10% faster than the AVX2 ones on
// Zen 5, where a VPERMT2PS deinterleave was 20% slower than AVX2. The
// arithmetic, operation for operation, is that of the Go twins winoInGo and
// winoOutGo, so every version gives bit-identical results.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("amd64,!purego")
	winoIn(false)
	winoIn(true)
	winoOut(false)
	winoOut(true)
	Generate()
}

// strided returns base + q·stride for q < 4, with stride and stride3 (=
// 3·stride) in registers.
func strided(base, stride, stride3 Register, q int) Mem {
	switch q {
	case 0:
		return Mem{Base: base}
	case 1:
		return Mem{Base: base, Index: stride, Scale: 1}
	case 2:
		return Mem{Base: base, Index: stride, Scale: 2}
	}
	return Mem{Base: base, Index: stride3, Scale: 1}
}

// winoIn emits winoInAVX2 or winoInAVX512: V = Bᵀ d B for ng consecutive
// groups of 8 tiles of one channel.
func winoIn(wide bool) {
	name := "winoInAVX2"
	if wide {
		name = "winoInAVX512"
	}
	TEXT(name, NOSPLIT, "func(dst *float32, xs int, src *float32, rs int, ng int)")
	Pragma("noescape")
	Doc(name+" is winoInGo: for g < ng it reads src[16g + r*rs + 0..17] (r < 4)",
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

	// body emits one pass over one group (8 lanes, YMM) or two (16 lanes,
	// ZMM), then advances the pointers past them.
	body := func(lanes int) {
		vec := YMM
		if lanes == 16 {
			vec = ZMM
		}
		// rowT returns t[r][0..3] = d B for input row r.
		rowT := func(r int) [4]VecVirtual {
			m := strided(src, rs, rs3, r)
			var d [4]VecVirtual
			for i := range d {
				d[i] = vec()
			}
			if lanes == 16 {
				// Each 256-bit half holds one group's row, so the
				// in-lane shuffles below deinterleave both groups.
				half := func(off int) VecVirtual {
					v := vec()
					VMOVUPS(m.Offset(off), v.AsY())
					VINSERTF64X4(U8(1), m.Offset(off+64), v, v)
					return v
				}
				a, b := half(0), half(32)
				VSHUFPS(U8(0x88), b, a, d[0])
				VSHUFPS(U8(0xDD), b, a, d[1])
				a2, b2 := half(8), half(40)
				VSHUFPS(U8(0x88), b2, a2, d[2])
				VSHUFPS(U8(0xDD), b2, a2, d[3])
			} else {
				a, b := vec(), vec()
				VMOVUPS(m, a)
				VMOVUPS(m.Offset(32), b)
				VSHUFPS(U8(0x88), b, a, d[0])
				VSHUFPS(U8(0xDD), b, a, d[1])
				a2, b2 := vec(), vec()
				VMOVUPS(m.Offset(8), a2)
				VMOVUPS(m.Offset(40), b2)
				VSHUFPS(U8(0x88), b2, a2, d[2])
				VSHUFPS(U8(0xDD), b2, a2, d[3])
			}
			var t [4]VecVirtual
			for i := range t {
				t[i] = vec()
			}
			VSUBPS(d[2], d[0], t[0]) // d0 - d2
			VADDPS(d[2], d[1], t[1]) // d1 + d2
			VSUBPS(d[1], d[2], t[2]) // d2 - d1
			VSUBPS(d[3], d[1], t[3]) // d1 - d3
			return t
		}
		t1 := rowT(1)
		t2 := rowT(2)
		for q := 0; q < 4; q++ {
			v := vec()
			VADDPS(t2[q], t1[q], v) // t1 + t2
			VMOVUPS(v, strided(p[1], xs, xs3, q))
			w := vec()
			VSUBPS(t1[q], t2[q], w) // t2 - t1
			VMOVUPS(w, strided(p[2], xs, xs3, q))
		}
		t0 := rowT(0)
		for q := 0; q < 4; q++ {
			v := vec()
			VSUBPS(t2[q], t0[q], v) // t0 - t2
			VMOVUPS(v, strided(p[0], xs, xs3, q))
		}
		t3 := rowT(3)
		for q := 0; q < 4; q++ {
			v := vec()
			VSUBPS(t3[q], t1[q], v) // t1 - t3
			VMOVUPS(v, strided(p[3], xs, xs3, q))
		}
		ADDQ(U32(8*lanes), src)
		for a := 0; a < 4; a++ {
			ADDQ(U32(4*lanes), p[a])
		}
	}

	eachGroup(name, ng, wide, body)
	VZEROUPPER()
	RET()
}

// winoOut emits winoOutAVX2 or winoOutAVX512: Y = Aᵀ M A for `rows` rows of
// ng consecutive groups of 8 tiles.
func winoOut(wide bool) {
	name := "winoOutAVX2"
	if wide {
		name = "winoOutAVX512"
	}
	TEXT(name, NOSPLIT, "func(out *float32, ldc int, wp int, m *float32, xs int, ldm int, bias *float32, rows int, mode int, ng int)")
	Pragma("noescape")
	Doc(name+" is winoOutGo: for r < rows and g < ng it reads m[ξ*xs + r*ldm + 8g + lane]",
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
	mode := NewParamAddr("mode", 64)

	// body emits one group (8 lanes, YMM) or two (16 lanes, ZMM) of one
	// row, then advances out and p past them.
	body := func(lanes int) {
		vec := YMM
		if lanes == 16 {
			vec = ZMM
		}
		pre := fmt.Sprintf("%s%d", name, lanes)
		var a, b [4]VecVirtual
		for i := 0; i < 4; i++ {
			a[i], b[i] = vec(), vec()
			VMOVUPS(strided(p[i], xs, xs3, 0), a[i])
			VADDPS(strided(p[i], xs, xs3, 1), a[i], a[i]) // m0 + m1
			VMOVUPS(strided(p[i], xs, xs3, 1), b[i])
			VSUBPS(strided(p[i], xs, xs3, 2), b[i], b[i]) // m1 - m2
			VADDPS(strided(p[i], xs, xs3, 2), a[i], a[i]) // + m2
			VSUBPS(strided(p[i], xs, xs3, 3), b[i], b[i]) // - m3
		}
		// sum3(x) = x0 + x1 + x2, diff3(x) = x1 - x2 - x3.
		sum3 := func(x [4]VecVirtual) VecVirtual {
			y := vec()
			VADDPS(x[1], x[0], y)
			VADDPS(x[2], y, y)
			return y
		}
		diff3 := func(x [4]VecVirtual) VecVirtual {
			y := vec()
			VSUBPS(x[2], x[1], y)
			VSUBPS(x[3], y, y)
			return y
		}
		y00, y01, y10, y11 := sum3(a), sum3(b), diff3(a), diff3(b)
		// o: row 0 cols 0..7, 8..15; row 1 likewise (per group).
		var o [4]VecVirtual
		for i := range o {
			o[i] = vec()
		}
		VUNPCKLPS(y01, y00, o[0])
		VUNPCKHPS(y01, y00, o[1])
		VUNPCKLPS(y11, y10, o[2])
		VUNPCKHPS(y11, y10, o[3])
		// z: the values to store at outAt(i), 8·lanes/8 floats each
		// vector. With two groups, o[0] holds cols 0..7 of both groups
		// (one per 256-bit half) and o[1] cols 8..15: join the halves.
		z := o
		if lanes == 16 {
			for dy := 0; dy < 2; dy++ {
				lo, hi := o[2*dy], o[2*dy+1]
				z[2*dy], z[2*dy+1] = vec(), vec()
				VSHUFF32X4(U8(0x44), hi, lo, z[2*dy])   // group g
				VSHUFF32X4(U8(0xEE), hi, lo, z[2*dy+1]) // group g+1
			}
		}
		step := 4 * lanes // bytes per output vector
		outAt := func(i int) Mem {
			m := Mem{Base: out}
			if i >= 2 {
				m = Mem{Base: out, Index: wp, Scale: 1}
			}
			return m.Offset(step * (i % 2))
		}
		CMPQ(mode, U8(1))
		JL(LabelRef(pre + "Store"))
		JE(LabelRef(pre + "Bias"))
		for i := range z {
			VADDPS(outAt(i), z[i], z[i])
		}
		JMP(LabelRef(pre + "Store"))
		Label(pre + "Bias")
		bb := vec()
		VBROADCASTSS(Mem{Base: bias}, bb)
		for i := range z {
			VADDPS(z[i], bb, z[i])
		}
		Label(pre + "Store")
		for i := range z {
			VMOVUPS(z[i], outAt(i))
		}
		ADDQ(U32(8*lanes), out)
		for i := 0; i < 4; i++ {
			ADDQ(U32(4*lanes), p[i])
		}
	}

	Label(name + "Row")
	g := GP64()
	MOVQ(ng, g)
	eachGroup(name, g, wide, body)
	ADDQ(outStep, out)
	for i := 0; i < 4; i++ {
		ADDQ(mStep, p[i])
	}
	ADDQ(U8(4), bias)
	DECQ(NewParamAddr("rows", 56))
	JNZ(LabelRef(name + "Row"))
	VZEROUPPER()
	RET()
}

// eachGroup emits a loop that runs body over count groups (count ≥ 1; the
// register is clobbered): two at a time (16 lanes) and a last odd one (8)
// when wide, else one at a time.
func eachGroup(pre string, count Register, wide bool, body func(lanes int)) {
	if !wide {
		Label(pre + "Loop")
		body(8)
		DECQ(count)
		JNZ(LabelRef(pre + "Loop"))
		return
	}
	Label(pre + "Pair")
	CMPQ(count, U8(2))
	JL(LabelRef(pre + "Odd"))
	body(16)
	SUBQ(U8(2), count)
	JMP(LabelRef(pre + "Pair"))
	Label(pre + "Odd")
	CMPQ(count, U8(0))
	JE(LabelRef(pre + "Done"))
	body(8)
	Label(pre + "Done")
}
