package main

import "testing"

// TestEncodings checks the WORD encoders against an assembler. The expected
// words are llvm-mc's (LLVM 14, Debian), from
//
//	llvm-mc -triple=aarch64 -mattr=+neon -show-encoding
//
// on the instruction in each case's comment (bytes little-endian there).
func TestEncodings(t *testing.T) {
	for _, tc := range []struct {
		asm  string
		got  uint32
		want uint32
	}{
		{"fadd v1.4s, v2.4s, v3.4s", encThree(opFADD, 1, 2, 3), 0x4e23d441},
		{"fsub v31.4s, v0.4s, v17.4s", encThree(opFSUB, 31, 0, 17), 0x4eb1d41f},
		{"fmul v5.4s, v6.4s, v7.4s", encThree(opFMUL, 5, 6, 7), 0x6e27dcc5},
		{"fdiv v8.4s, v9.4s, v10.4s", encThree(opFDIV, 8, 9, 10), 0x6e2afd28},
		{"fmla v11.4s, v12.4s, v13.4s", encThree(opFMLA, 11, 12, 13), 0x4e2dcd8b},
		{"fmls v14.4s, v15.4s, v16.4s", encThree(opFMLS, 14, 15, 16), 0x4eb0cdee},
		{"fmax v17.4s, v18.4s, v19.4s", encThree(opFMAX, 17, 18, 19), 0x4e33f651},
		{"fmin v20.4s, v21.4s, v22.4s", encThree(opFMIN, 20, 21, 22), 0x4eb6f6b4},
		{"fcmgt v23.4s, v24.4s, v25.4s", encThree(opFCMGT, 23, 24, 25), 0x6eb9e717},
		{"fmla v0.4s, v24.4s, v27.s[0]", encFmlaElem(0, 24, 27, 0), 0x4f9b1300},
		{"fmla v23.4s, v26.4s, v28.s[3]", encFmlaElem(23, 26, 28, 3), 0x4fbc1b57},
		{"fmla v7.4s, v1.4s, v17.s[2]", encFmlaElem(7, 1, 17, 2), 0x4f911827},
		{"fmla v30.4s, v31.4s, v5.s[1]", encFmlaElem(30, 31, 5, 1), 0x4fa513fe},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: encoded %#08x, want %#08x", tc.asm, tc.got, tc.want)
		}
	}
}
