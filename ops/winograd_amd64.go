//go:build amd64 && !purego

package ops

// The asm transforms behind winoIn/winoOut slices, their reads and writes
// checked against the slices first.

func winoInAVX2Slices(dst []float32, xs int, src []float32, rs, ng int) {
	if checkWinoIn(3, dst, xs, src, rs, ng) {
		winoInAVX2(&dst[0], xs, &src[0], rs, ng)
	}
}

func winoInAVX512Slices(dst []float32, xs int, src []float32, rs, ng int) {
	if checkWinoIn(3, dst, xs, src, rs, ng) {
		winoInAVX512(&dst[0], xs, &src[0], rs, ng)
	}
}

func winoOutAVX2Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	if checkWinoOut(3, out, ldc, wp, m, xs, ldm, bias, rows, mode, ng) {
		winoOutAVX2(&out[0], ldc, wp, &m[0], xs, ldm, biasPtr(bias, mode), rows, mode, ng)
	}
}

func winoOutAVX512Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	if checkWinoOut(3, out, ldc, wp, m, xs, ldm, bias, rows, mode, ng) {
		winoOutAVX512(&out[0], ldc, wp, &m[0], xs, ldm, biasPtr(bias, mode), rows, mode, ng)
	}
}

func winoIn5AVX2Slices(dst []float32, xs int, src []float32, rs, ng int) {
	if checkWinoIn(5, dst, xs, src, rs, ng) {
		winoIn5AVX2(&dst[0], xs, &src[0], rs, ng)
	}
}

func winoIn5AVX512Slices(dst []float32, xs int, src []float32, rs, ng int) {
	if checkWinoIn(5, dst, xs, src, rs, ng) {
		winoIn5AVX512(&dst[0], xs, &src[0], rs, ng)
	}
}

func winoOut5AVX2Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	if checkWinoOut(5, out, ldc, wp, m, xs, ldm, bias, rows, mode, ng) {
		winoOut5AVX2(&out[0], ldc, wp, &m[0], xs, ldm, biasPtr(bias, mode), rows, mode, ng)
	}
}

func winoOut5AVX512Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	if checkWinoOut(5, out, ldc, wp, m, xs, ldm, bias, rows, mode, ng) {
		winoOut5AVX512(&out[0], ldc, wp, &m[0], xs, ldm, biasPtr(bias, mode), rows, mode, ng)
	}
}
