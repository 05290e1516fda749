package ops

// panelRows is MR, the number of output rows a GEMM micro-tile covers.
const panelRows = 8

// convGemmGeneric is the portable ConvGemm: a register-blocked loop over
// MR rows × 4 columns per tile, summing k in order for every column.
func convGemmGeneric(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool) {
	const mr = panelRows
	K := a.K
	var acc [mr][4]float32
	for p := 0; p*mr < a.M; p++ {
		rows := min(mr, a.M-p*mr)
		ap := a.Data[p*K*mr : (p+1)*K*mr]
		for j := 0; j < n; j += 4 {
			cols := min(4, n-j)
			for r := 0; r < mr; r++ {
				for q := 0; q < 4; q++ {
					acc[r][q] = 0
				}
			}
			for r := 0; r < rows; r++ {
				i := p*mr + r
				for q := 0; q < cols; q++ {
					if accumulate {
						acc[r][q] = c[i*ldc+j+q]
					} else if bias != nil {
						acc[r][q] = bias[i]
					}
				}
			}
			if cols == 4 {
				for k := 0; k < K; k++ {
					bb := b[int(offs[k])+j : int(offs[k])+j+4 : int(offs[k])+j+4]
					b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
					aa := ap[k*mr : k*mr+mr : k*mr+mr]
					for r := 0; r < mr; r++ {
						w := aa[r]
						acc[r][0] += w * b0
						acc[r][1] += w * b1
						acc[r][2] += w * b2
						acc[r][3] += w * b3
					}
				}
			} else {
				for k := 0; k < K; k++ {
					o := int(offs[k]) + j
					aa := ap[k*mr : k*mr+mr]
					for r := 0; r < mr; r++ {
						for q := 0; q < cols; q++ {
							acc[r][q] += aa[r] * b[o+q]
						}
					}
				}
			}
			for r := 0; r < rows; r++ {
				i := p*mr + r
				copy(c[i*ldc+j:i*ldc+j+cols], acc[r][:cols])
			}
		}
	}
}
