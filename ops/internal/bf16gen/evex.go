package main

// EVEX encodings of the register forms of the two AVX512_BF16 instructions
// used, 512-bit, no mask (Intel SDM vol. 2: "VDPBF16PS: EVEX.512.F3.0F38.W0
// 52 /r", "VCVTNE2PS2BF16: EVEX.512.F2.0F38.W0 72 /r"). Operands are ZMM
// register numbers 0..31 in Intel order: dst (ModRM.reg), src1 (EVEX.vvvv),
// src2 (ModRM.rm).

const (
	ppF3 = 2
	ppF2 = 3
)

func encVDPBF16PS(dst, src1, src2 int) []byte      { return evex512(0x52, ppF3, dst, src1, src2) }
func encVCVTNE2PS2BF16(dst, src1, src2 int) []byte { return evex512(0x72, ppF2, dst, src1, src2) }

// evex512 encodes op (map 0F38, W0) on three ZMM registers.
func evex512(op byte, pp byte, dst, src1, src2 int) []byte {
	inv := func(v int, bit uint) byte { return byte(^v>>bit) & 1 }
	// P0: R X B R' 0 0 m m, with R/R' from dst, B/X from src2, map 0F38.
	p0 := inv(dst, 3)<<7 | inv(src2, 4)<<6 | inv(src2, 3)<<5 | inv(dst, 4)<<4 | 0b10
	// P1: W vvvv 1 pp, vvvv = ¬src1[3:0].
	p1 := byte(^src1&15)<<3 | 1<<2 | pp
	// P2: z L'L b V' aaa: 512-bit (L'L = 10), V' = ¬src1[4], no mask.
	p2 := byte(0b10)<<5 | inv(src1, 4)<<3
	modrm := byte(0xc0) | byte(dst&7)<<3 | byte(src2&7)
	return []byte{0x62, p0, p1, p2, op, modrm}
}
