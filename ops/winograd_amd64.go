//go:build amd64 && !purego

package ops

//go:generate go run ./internal/wingen -out winograd_amd64.s -stubs winograd_stubs_amd64.go -pkg ops

// The asm transforms behind winoIn/winoOut slices, their reads and writes
// checked against the slices first.

func winoInAVX2Slices(dst []float32, xs int, src []float32, rs, ng int) {
	if checkWinoIn(dst, xs, src, rs, ng) {
		winoInAVX2(&dst[0], xs, &src[0], rs, ng)
	}
}

func winoInAVX512Slices(dst []float32, xs int, src []float32, rs, ng int) {
	if checkWinoIn(dst, xs, src, rs, ng) {
		winoInAVX512(&dst[0], xs, &src[0], rs, ng)
	}
}

func checkWinoIn(dst []float32, xs int, src []float32, rs, ng int) bool {
	if ng <= 0 {
		return false
	}
	if len(dst) < 15*xs+8*ng || len(src) < 3*rs+16*ng+2 {
		panic("ops.winoIn: slices too short")
	}
	return true
}

func winoOutAVX2Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	if checkWinoOut(out, ldc, wp, m, xs, ldm, bias, rows, mode, ng) {
		winoOutAVX2(&out[0], ldc, wp, &m[0], xs, ldm, biasPtr(bias, mode), rows, mode, ng)
	}
}

func winoOutAVX512Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	if checkWinoOut(out, ldc, wp, m, xs, ldm, bias, rows, mode, ng) {
		winoOutAVX512(&out[0], ldc, wp, &m[0], xs, ldm, biasPtr(bias, mode), rows, mode, ng)
	}
}

func checkWinoOut(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) bool {
	if rows <= 0 || ng <= 0 {
		return false
	}
	if len(out) < (rows-1)*ldc+wp+16*ng || len(m) < 15*xs+(rows-1)*ldm+8*ng {
		panic("ops.winoOut: slices too short")
	}
	if mode == 1 && len(bias) < rows {
		panic("ops.winoOut: bias too short")
	}
	return true
}

// biasPtr is the bias the asm reads: only in mode 1.
func biasPtr(bias []float32, mode int) *float32 {
	if mode != 1 {
		return nil
	}
	return &bias[0]
}
