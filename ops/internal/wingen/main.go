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
	"math"

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
	wino5const = GLOBL("wino5const", RODATA|NOPTR)
	DATA(0, U32(math.Float32bits(2)))
	DATA(4, U32(math.Float32bits(4)))
	winoIn5(false)
	winoIn5(true)
	winoOut5(false)
	winoOut5(true)
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

// inHeader emits the TEXT, documentation and argument loads of an input
// transform reading rows input rows of cols+1 values a group into nx ξ
// planes (Go twin twin); xs and rs come back in bytes.
func inHeader(name, twin string, rows, cols, nx int) (dst, xs, src, rs, ng Register) {
	TEXT(name, NOSPLIT, "func(dst *float32, xs int, src *float32, rs int, ng int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is %s: for g < ng it reads src[16g + r*rs + 0..%d] (r < %d)", name, twin, cols, rows),
		fmt.Sprintf("and writes dst[ξ*xs + 8g + lane] (ξ < %d, lane < 8); ng must be ≥ 1.", nx))
	dst = Load(Param("dst"), GP64())
	xs = Load(Param("xs"), GP64())
	SHLQ(U8(2), xs)
	src = Load(Param("src"), GP64())
	rs = Load(Param("rs"), GP64())
	SHLQ(U8(2), rs)
	ng = Load(Param("ng"), GP64())
	return
}

// winoIn emits winoInAVX2 or winoInAVX512: V = Bᵀ d B for ng consecutive
// groups of 8 tiles of one channel.
func winoIn(wide bool) {
	name := "winoInAVX2"
	if wide {
		name = "winoInAVX512"
	}
	dst, xs, src, rs, ng := inHeader(name, "winoInGo", 4, 17, 16)

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
	o := outHeader(name, "winoOutGo", 16)
	out, wp, mp, xs, bias := o.out, o.wp, o.m, o.xs, o.bias

	xs3 := GP64()
	LEAQ(Mem{Base: xs, Index: xs, Scale: 2}, xs3)
	var p [4]Register
	p[0] = mp
	for a := 1; a < 4; a++ {
		p[a] = GP64()
		LEAQ(Mem{Base: p[a-1], Index: xs, Scale: 4}, p[a])
	}
	mode := o.mode

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
		storeOut(pre, lanes, out, wp, bias, mode, y00, y01, y10, y11)
		ADDQ(U32(8*lanes), out)
		for i := 0; i < 4; i++ {
			ADDQ(U32(4*lanes), p[i])
		}
	}

	o.rows(name, wide, p[:], body)
}

// outRegs are an output transform's arguments in registers: out, wp, m,
// xs and bias, with wp and xs in bytes; outStep and mStep take out and m
// from the end of a row's groups to the next row.
type outRegs struct {
	out, wp, m, xs, bias, outStep, mStep Register
	mode                                 Mem
}

// outHeader emits the TEXT, the documentation and the argument loads of
// an output transform with nx ξ planes whose Go twin is twin.
func outHeader(name, twin string, nx int) outRegs {
	TEXT(name, NOSPLIT, "func(out *float32, ldc int, wp int, m *float32, xs int, ldm int, bias *float32, rows int, mode int, ng int)")
	Pragma("noescape")
	Doc(name+" is "+twin+": for r < rows and g < ng it reads m[ξ*xs + r*ldm + 8g + lane]",
		fmt.Sprintf("(ξ < %d) and writes out[r*ldc + dy*wp + 16g + 0..15] (dy < 2), adding bias[r]", nx),
		"(mode 1) or the old out value (mode 2); rows and ng must be ≥ 1.")
	var o outRegs
	o.out = Load(Param("out"), GP64())
	o.wp = Load(Param("wp"), GP64())
	SHLQ(U8(2), o.wp)
	o.m = Load(Param("m"), GP64())
	o.xs = Load(Param("xs"), GP64())
	SHLQ(U8(2), o.xs)
	o.bias = Load(Param("bias"), GP64())
	o.outStep = Load(Param("ldc"), GP64())
	SHLQ(U8(2), o.outStep)
	o.mStep = Load(Param("ldm"), GP64())
	SHLQ(U8(2), o.mStep)
	t := Load(Param("ng"), GP64())
	SHLQ(U8(5), t) // 8 floats of m a group
	SUBQ(t, o.mStep)
	SHLQ(U8(1), t) // 16 floats of out a group
	SUBQ(t, o.outStep)
	o.mode = NewParamAddr("mode", 64)
	return o
}

// rows emits the row loop of an output transform: body over the row's ng
// groups, then out, the m pointers in ms and bias step to the next row.
func (o outRegs) rows(name string, wide bool, ms []Register, body func(lanes int)) {
	Label(name + "Row")
	g := Load(Param("ng"), GP64())
	eachGroup(name, g, wide, body)
	ADDQ(o.outStep, o.out)
	for _, m := range ms {
		ADDQ(o.mStep, m)
	}
	ADDQ(U8(4), o.bias)
	DECQ(NewParamAddr("rows", 56))
	JNZ(LabelRef(name + "Row"))
	VZEROUPPER()
	RET()
}

// storeOut emits the end of an output transform: it interleaves one row's
// 2×2 tile outputs y00, y01 (output row dy = 0) and y10, y11 (dy = 1) of
// one group (8 lanes) or two (16) into output columns, adds the bias or
// the old values as mode says, and stores them at out (dy = 0) and
// out + wp bytes (dy = 1). pre names its labels.
func storeOut(pre string, lanes int, out, wp, bias Register, mode Mem, y00, y01, y10, y11 VecVirtual) {
	vec := YMM
	if lanes == 16 {
		vec = ZMM
	}
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

// wino5const holds the F(2×2, 5×5) transforms' constants 2 and 4.
var wino5const Mem

// consts5 broadcasts the constants 2 and 4 into registers of vec's width.
func consts5(vec func() VecVirtual) (two, four VecVirtual) {
	two, four = vec(), vec()
	VBROADCASTSS(wino5const.Offset(0), two)
	VBROADCASTSS(wino5const.Offset(4), four)
	return two, four
}

// loadHalves returns a ZMM holding the 8 floats at m in its low half and
// the 8 at m+64 bytes in its high half. The low half goes through a YMM of
// its own: a write to the low half of the ZMM itself is a partial write,
// which the register allocator takes for a register live since the
// function's entry (too many of those, and it finds no registers).
func loadHalves(m Mem) VecVirtual {
	y, z := YMM(), ZMM()
	VMOVUPS(m, y)
	VINSERTF64X4(U8(1), m.Offset(64), y.AsZ(), z)
	return z
}

// rowBase returns a register holding the address of ξ plane 6a of a
// 36-plane buffer (p0: plane 0, p18: plane 18, xs3: 3 planes in bytes).
func rowBase(p0, p18, xs3 Register, a int) Register {
	base := p0
	if a >= 3 {
		base = p18
	}
	if a%3 == 0 {
		return base
	}
	r := GP64()
	LEAQ(Mem{Base: base, Index: xs3, Scale: uint8(2 * (a % 3))}, r)
	return r
}

// qOff addresses plane q (q < 6) after base, planes xs bytes apart.
func qOff(base, xs, xs3, xs5 Register, q int) Mem {
	switch q {
	case 0:
		return Mem{Base: base}
	case 1, 2, 4:
		return Mem{Base: base, Index: xs, Scale: uint8(q)}
	case 3:
		return Mem{Base: base, Index: xs3, Scale: 1}
	}
	return Mem{Base: base, Index: xs5, Scale: 1}
}

// bt5 emits winoRow5 on d (consumed), calling store with each q_i as soon
// as it is ready.
func bt5(vec func() VecVirtual, d [6]VecVirtual, two, four VecVirtual, store func(i int, v VecVirtual)) {
	a, b := vec(), vec()
	VSUBPS(d[2], d[4], a) // a = d4 - d2
	VSUBPS(d[1], d[3], b) // b = d3 - d1
	// q0 = 2*((d0+d4) - 2*d2) + (b + 2*b)
	c := vec()
	VADDPS(d[4], d[0], c)
	VFNMADD231PS(two, d[2], c)
	b3 := vec()
	VMOVAPS(b, b3)
	VFMADD231PS(two, b, b3)
	VFMADD231PS(two, c, b3)
	store(0, b3)
	// q1 = 4*d3 + (2*(d4 - d1) + (d2 + d3))
	t1, t2 := vec(), vec()
	VSUBPS(d[1], d[4], t1)
	VADDPS(d[3], d[2], t2)
	VFMADD231PS(two, t1, t2)
	VFMADD231PS(four, d[3], t2)
	store(1, t2)
	// q2 = (2*(d4 + d1) + (d3 - d2)) - 4*d2
	u1, u2 := vec(), vec()
	VADDPS(d[1], d[4], u1)
	VSUBPS(d[2], d[3], u2)
	VFMADD231PS(two, u1, u2)
	VFNMADD231PS(four, d[2], u2)
	store(2, u2)
	// q3 = a + 2*b
	q3 := vec()
	VMOVAPS(a, q3)
	VFMADD231PS(two, b, q3)
	store(3, q3)
	// q4 = 2*a - b
	VFMSUB231PS(two, a, b)
	store(4, b)
	// q5 = 2*((d1 + d5) - 2*d3) + (a + 2*a)
	v := vec()
	VADDPS(d[5], d[1], v)
	VFNMADD231PS(two, d[3], v)
	a3 := vec()
	VMOVAPS(a, a3)
	VFMADD231PS(two, a, a3)
	VFMADD231PS(two, v, a3)
	store(5, a3)
}

// winoIn5 emits winoIn5AVX2 or winoIn5AVX512: V = Bᵀ d B of F(2×2, 5×5)
// for ng consecutive groups of 8 tiles of one channel, in two passes over
// the 36 planes: the rows' t = d B go to plane 6r+q, then each column q is
// read back and replaced by Bᵀ t (the same planes).
func winoIn5(wide bool) {
	name := "winoIn5AVX2"
	if wide {
		name = "winoIn5AVX512"
	}
	dst, xs, src, rs, ng := inHeader(name, "winoIn5Go", 6, 19, 36)
	xs3, xs5 := GP64(), GP64()
	LEAQ(Mem{Base: xs, Index: xs, Scale: 2}, xs3)
	LEAQ(Mem{Base: xs, Index: xs, Scale: 4}, xs5)
	p18 := GP64()
	LEAQ(Mem{Base: dst, Index: xs3, Scale: 4}, p18)
	LEAQ(Mem{Base: p18, Index: xs3, Scale: 2}, p18)

	body := func(lanes int) {
		vec := YMM
		if lanes == 16 {
			vec = ZMM
		}
		two, four := consts5(vec)
		// Pass 1: t[r] = d B for input row r, to planes 6r..6r+5.
		row := GP64()
		MOVQ(src, row)
		for r := 0; r < 6; r++ {
			var d [6]VecVirtual
			for k := 0; k < 3; k++ {
				var lo, hi VecVirtual
				off := 8 * k // bytes: d[2k], d[2k+1] start at float 2k
				if lanes == 16 {
					lo, hi = loadHalves(Mem{Base: row}.Offset(off)), loadHalves(Mem{Base: row}.Offset(off+32))
				} else {
					lo, hi = vec(), vec()
					VMOVUPS(Mem{Base: row}.Offset(off), lo)
					VMOVUPS(Mem{Base: row}.Offset(off+32), hi)
				}
				d[2*k], d[2*k+1] = vec(), vec()
				VSHUFPS(U8(0x88), hi, lo, d[2*k])
				VSHUFPS(U8(0xDD), hi, lo, d[2*k+1])
			}
			base := rowBase(dst, p18, xs3, r)
			bt5(vec, d, two, four, func(q int, v VecVirtual) { VMOVUPS(v, qOff(base, xs, xs3, xs5, q)) })
			if r < 5 {
				ADDQ(rs, row)
			}
		}
		// Pass 2: column q of t, planes 6r+q, becomes V, planes 6a+q.
		for q := 0; q < 6; q++ {
			pq, pq18 := GP64(), GP64()
			LEAQ(qOff(dst, xs, xs3, xs5, q), pq)
			LEAQ(qOff(p18, xs, xs3, xs5, q), pq18)
			at := func(r int) Mem {
				base := pq
				if r >= 3 {
					base = pq18
				}
				if r%3 == 0 {
					return Mem{Base: base}
				}
				return Mem{Base: base, Index: xs3, Scale: uint8(2 * (r % 3))}
			}
			var t [6]VecVirtual
			for r := range t {
				t[r] = vec()
				VMOVUPS(at(r), t[r])
			}
			bt5(vec, t, two, four, func(a int, v VecVirtual) { VMOVUPS(v, at(a)) })
		}
		ADDQ(U32(8*lanes), src)
		ADDQ(U32(4*lanes), dst)
		ADDQ(U32(4*lanes), p18)
	}

	eachGroup(name, ng, wide, body)
	VZEROUPPER()
	RET()
}

// winoOut5 emits winoOut5AVX2 or winoOut5AVX512: Y = Aᵀ M A of F(2×2,
// 5×5) for `rows` rows of ng consecutive groups of 8 tiles.
func winoOut5(wide bool) {
	name := "winoOut5AVX2"
	if wide {
		name = "winoOut5AVX512"
	}
	o := outHeader(name, "winoOut5Go", 36)
	out, wp, mp, xs, bias := o.out, o.wp, o.m, o.xs, o.bias
	xs3, xs5 := GP64(), GP64()
	LEAQ(Mem{Base: xs, Index: xs, Scale: 2}, xs3)
	LEAQ(Mem{Base: xs, Index: xs, Scale: 4}, xs5)
	m18 := GP64()
	LEAQ(Mem{Base: mp, Index: xs3, Scale: 4}, m18)
	LEAQ(Mem{Base: m18, Index: xs3, Scale: 2}, m18)
	mode := o.mode

	body := func(lanes int) {
		vec := YMM
		if lanes == 16 {
			vec = ZMM
		}
		pre := fmt.Sprintf("%s%d", name, lanes)
		two, _ := consts5(vec)
		// col returns (s_a, t_a) = winoCol5 over planes 6a..6a+5.
		col := func(a int) (VecVirtual, VecVirtual) {
			base := rowBase(mp, m18, xs3, a)
			at := func(q int) Mem { return qOff(base, xs, xs3, xs5, q) }
			m1, p12, n12 := vec(), vec(), vec()
			VMOVUPS(at(1), m1)
			VADDPS(at(2), m1, p12) // m1 + m2
			VSUBPS(at(2), m1, n12) // m1 - m2
			s := vec()
			VADDPS(at(0), p12, s) // m0 + (m1 + m2)
			m4, e, f := vec(), vec(), vec()
			VMOVUPS(at(4), m4)
			VMOVAPS(m4, e)
			VFMADD231PS(at(3), two, e) // 2*m3 + m4
			VMOVUPS(at(3), f)
			VFNMADD231PS(two, m4, f) // m3 - 2*m4
			VADDPS(e, s, s)
			tt := vec()
			VADDPS(f, n12, tt)    // (m1 - m2) + (m3 - 2*m4)
			VADDPS(at(5), tt, tt) // + m5
			return s, tt
		}
		s1, t1 := col(1)
		s2, t2 := col(2)
		ps, ns, pt, nt := vec(), vec(), vec(), vec()
		VADDPS(s2, s1, ps)
		VSUBPS(s2, s1, ns)
		VADDPS(t2, t1, pt)
		VSUBPS(t2, t1, nt)
		s0, t0 := col(0)
		y00, y01 := vec(), vec()
		VADDPS(ps, s0, y00) // s0 + (s1 + s2)
		VADDPS(pt, t0, y01)
		s3, t3 := col(3)
		s4, t4 := col(4)
		// y00 += 2*s3 + s4; y10 = (s1 - s2) + (s3 - 2*s4); the same for t.
		es, et := vec(), vec()
		VMOVAPS(s4, es)
		VFMADD231PS(two, s3, es)
		VFNMADD231PS(two, s4, s3)
		VMOVAPS(t4, et)
		VFMADD231PS(two, t3, et)
		VFNMADD231PS(two, t4, t3)
		VADDPS(es, y00, y00)
		VADDPS(et, y01, y01)
		y10, y11 := vec(), vec()
		VADDPS(s3, ns, y10)
		VADDPS(t3, nt, y11)
		s5, t5 := col(5)
		VADDPS(s5, y10, y10)
		VADDPS(t5, y11, y11)
		storeOut(pre, lanes, out, wp, bias, mode, y00, y01, y10, y11)
		ADDQ(U32(8*lanes), out)
		ADDQ(U32(4*lanes), mp)
		ADDQ(U32(4*lanes), m18)
	}

	o.rows(name, wide, []Register{mp, m18}, body)
}
