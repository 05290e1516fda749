//go:build amd64 && !purego

package ops

// The asm transforms behind winoIn/winoOut slices, their reads and writes
// checked against the slices first (winoInAsm, winoOutAsm).

func winoInAVX2Slices(dst []float32, xs int, src []float32, rs, ng int) {
	winoInAsm(3, winoInAVX2, dst, xs, src, rs, ng)
}

func winoInAVX512Slices(dst []float32, xs int, src []float32, rs, ng int) {
	winoInAsm(3, winoInAVX512, dst, xs, src, rs, ng)
}

func winoIn5AVX2Slices(dst []float32, xs int, src []float32, rs, ng int) {
	winoInAsm(5, winoIn5AVX2, dst, xs, src, rs, ng)
}

func winoIn5AVX512Slices(dst []float32, xs int, src []float32, rs, ng int) {
	winoInAsm(5, winoIn5AVX512, dst, xs, src, rs, ng)
}

func winoOutAVX2Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	winoOutAsm(3, winoOutAVX2, out, ldc, wp, m, xs, ldm, bias, rows, mode, ng)
}

func winoOutAVX512Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	winoOutAsm(3, winoOutAVX512, out, ldc, wp, m, xs, ldm, bias, rows, mode, ng)
}

func winoOut5AVX2Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	winoOutAsm(5, winoOut5AVX2, out, ldc, wp, m, xs, ldm, bias, rows, mode, ng)
}

func winoOut5AVX512Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	winoOutAsm(5, winoOut5AVX512, out, ldc, wp, m, xs, ldm, bias, rows, mode, ng)
}
