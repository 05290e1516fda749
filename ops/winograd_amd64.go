//go:build amd64 && !purego

package ops

//go:generate go run ./internal/wingen -out winograd_amd64.s -stubs winograd_stubs_amd64.go -pkg ops

// winoInAVX2Slices checks winoInAVX2's reads and writes against the slices.
func winoInAVX2Slices(dst []float32, xs int, src []float32, rs, ng int) {
	if ng <= 0 {
		return
	}
	if len(dst) < 15*xs+8*ng || len(src) < 3*rs+16*ng+2 {
		panic("ops.winoIn: slices too short")
	}
	winoInAVX2(&dst[0], xs, &src[0], rs, ng)
}

// winoOutAVX2Slices checks winoOutAVX2's reads and writes against the slices.
func winoOutAVX2Slices(out []float32, ldc, wp int, m []float32, xs, ldm int, bias []float32, rows, mode, ng int) {
	if rows <= 0 || ng <= 0 {
		return
	}
	if len(out) < (rows-1)*ldc+wp+16*ng || len(m) < 15*xs+(rows-1)*ldm+8*ng {
		panic("ops.winoOut: slices too short")
	}
	var bp *float32
	if mode == 1 {
		if len(bias) < rows {
			panic("ops.winoOut: bias too short")
		}
		bp = &bias[0]
	}
	winoOutAVX2(&out[0], ldc, wp, &m[0], xs, ldm, bp, rows, mode, ng)
}
