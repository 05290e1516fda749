package main

import (
	"bytes"
	"testing"
)

// TestEncodings checks the EVEX encoders against an assembler. The
// expected bytes are GNU as 2.40's (Debian binutils), from
//
//	as t.s -o t.o && objdump -d t.o
//
// on the instruction in each case's comment (AT&T operand order there:
// src2, src1, dst).
func TestEncodings(t *testing.T) {
	for _, tc := range []struct {
		asm  string
		got  []byte
		want []byte
	}{
		{"vdpbf16ps %zmm3,%zmm2,%zmm1", encVDPBF16PS(1, 2, 3), []byte{0x62, 0xf2, 0x6e, 0x48, 0x52, 0xcb}},
		{"vdpbf16ps %zmm31,%zmm17,%zmm24", encVDPBF16PS(24, 17, 31), []byte{0x62, 0x02, 0x76, 0x40, 0x52, 0xc7}},
		{"vdpbf16ps %zmm0,%zmm28,%zmm9", encVDPBF16PS(9, 28, 0), []byte{0x62, 0x72, 0x1e, 0x40, 0x52, 0xc8}},
		{"vcvtne2ps2bf16 %zmm3,%zmm2,%zmm1", encVCVTNE2PS2BF16(1, 2, 3), []byte{0x62, 0xf2, 0x6f, 0x48, 0x72, 0xcb}},
		{"vcvtne2ps2bf16 %zmm19,%zmm12,%zmm25", encVCVTNE2PS2BF16(25, 12, 19), []byte{0x62, 0x22, 0x1f, 0x48, 0x72, 0xcb}},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: encoded % x, want % x", tc.asm, tc.got, tc.want)
		}
	}
}
