package loader

// contiguous reports whether a tensor's strides are the row-major strides
// of its shape (dimensions of size 1 may have any stride).
func contiguous(shape, stride []int) bool {
	want := 1
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] != 1 && stride[i] != want {
			return false
		}
		want *= shape[i]
	}
	return true
}

// gatherStrided copies a strided view of src (offset, shape, stride in
// elements, all checked against len(src)) into the row-major dst.
func gatherStrided[E float32 | int64](dst, src []E, offset int, shape, stride []int) {
	if len(dst) == 0 {
		return
	}
	if len(shape) == 0 {
		dst[0] = src[offset]
		return
	}
	// Walk all but the last dimension with an odometer; copy rows in a
	// tight inner loop.
	last := len(shape) - 1
	n, s := shape[last], stride[last]
	idx := make([]int, last)
	base := offset
	for o := 0; o < len(dst); o += n {
		row := dst[o : o+n]
		if s == 1 {
			copy(row, src[base:base+n])
		} else {
			for j := range row {
				row[j] = src[base+j*s]
			}
		}
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			base += stride[d]
			if idx[d] < shape[d] {
				break
			}
			base -= stride[d] * idx[d]
			idx[d] = 0
		}
	}
}
