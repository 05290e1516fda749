package ops

// panelRows is MR, the number of output rows a packed A panel holds.
const panelRows = 8

// genericBlockCols is the column block of convGemmGeneric: every panel
// passes over a block's B rows (K·genericBlockCols floats, 147 KB for
// K = 576) while they are in L2.
const genericBlockCols = 64

// convGemmGeneric is the portable ConvGemm. It walks blocks of columns, and
// in each the packed panels in halves of 4 rows; gemmTile41 sums one
// column of such a half over k in order. The tile is small because that is
// what stays in registers: Go schedules a loop's accumulator updates after
// all its products, so an R-row tile needs 2R float registers (amd64 has 15
// for floats), and with 4 rows the loop's instructions are mostly the
// multiply-adds (no spills; checked with -gcflags=-S).
func convGemmGeneric(c []float32, ldc int, a *PackedA, bias []float32, b []float32, offs []int32, n int, accumulate bool) {
	K := a.K
	offs = offs[:K]
	for j0 := 0; j0 < n; j0 += genericBlockCols {
		j1 := min(n, j0+genericBlockCols)
		for i0 := 0; i0 < a.M; i0 += 4 {
			rows := min(4, a.M-i0)
			// The half panel: A[i0+r, k] at ap[k*panelRows+r].
			p, r0 := i0/panelRows, i0%panelRows
			ap := a.Data[p*K*panelRows+r0 : (p+1)*K*panelRows]
			var b0, b1, b2, b3 float32
			if bias != nil && !accumulate {
				b0 = bias[i0]
				if rows > 1 {
					b1 = bias[i0+1]
				}
				if rows > 2 {
					b2 = bias[i0+2]
				}
				if rows > 3 {
					b3 = bias[i0+3]
				}
			}
			for j := j0; j < j1; j++ {
				c0, c1, c2, c3 := b0, b1, b2, b3
				if accumulate {
					c0 = c[i0*ldc+j]
					if rows > 1 {
						c1 = c[(i0+1)*ldc+j]
					}
					if rows > 2 {
						c2 = c[(i0+2)*ldc+j]
					}
					if rows > 3 {
						c3 = c[(i0+3)*ldc+j]
					}
				}
				c0, c1, c2, c3 = gemmTile41(c0, c1, c2, c3, ap, b[j:], offs)
				c[i0*ldc+j] = c0
				if rows > 1 {
					c[(i0+1)*ldc+j] = c1
				}
				if rows > 2 {
					c[(i0+2)*ldc+j] = c2
				}
				if rows > 3 {
					c[(i0+3)*ldc+j] = c3
				}
			}
		}
	}
}

// gemmTile41 adds Σ_k A[r, k]·b[offs[k]] to c_r for 4 rows: ap holds the
// rows' A values of k at ap[k*panelRows : k*panelRows+4]. Two k per
// iteration halve the loop's bookkeeping; each c_r still adds its products
// one k after another. Not inlined, so that the caller's variables do not
// take the loop's registers.
//
//go:noinline
func gemmTile41(c0, c1, c2, c3 float32, ap, b []float32, offs []int32) (float32, float32, float32, float32) {
	if len(offs)%2 == 1 {
		x := ap[:4:4]
		v := b[offs[0]]
		c0 += x[0] * v
		c1 += x[1] * v
		c2 += x[2] * v
		c3 += x[3] * v
		ap = ap[min(len(ap), panelRows):]
		offs = offs[1:]
	}
	for i := 0; len(offs) >= 2; i += 2 * panelRows {
		x := ap[i : i+panelRows+4 : i+panelRows+4]
		v, w := b[offs[0]], b[offs[1]]
		offs = offs[2:]
		c0 += x[0] * v
		c1 += x[1] * v
		c2 += x[2] * v
		c3 += x[3] * v
		c0 += x[panelRows] * w
		c1 += x[panelRows+1] * w
		c2 += x[panelRows+2] * w
		c3 += x[panelRows+3] * w
	}
	return c0, c1, c2, c3
}
