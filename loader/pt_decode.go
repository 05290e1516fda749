package loader

import (
	"encoding/binary"
	"math"
)

// decodeChunk converts whole elements of src, stored as dtype in the given
// byte order, into dst (len(dst) == len(src)/size). It runs once per chunk
// of a storage, so each case is a tight loop over the bytes.
func decodeChunk(dst []float32, src []byte, dtype string, bigEndian bool) {
	var bo binary.ByteOrder = binary.LittleEndian
	if bigEndian {
		bo = binary.BigEndian
	}
	switch dtype {
	case "float32":
		if !bigEndian {
			src = src[:4*len(dst)]
			for i := range dst {
				dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
			}
			return
		}
		for i := range dst {
			dst[i] = math.Float32frombits(bo.Uint32(src[4*i:]))
		}
	case "float64":
		for i := range dst {
			dst[i] = float32(math.Float64frombits(bo.Uint64(src[8*i:])))
		}
	case "float16":
		for i := range dst {
			dst[i] = halfToFloat32(bo.Uint16(src[2*i:]))
		}
	case "bfloat16":
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(bo.Uint16(src[2*i:])) << 16)
		}
	case "int64":
		for i := range dst {
			dst[i] = float32(int64(bo.Uint64(src[8*i:])))
		}
	case "int32":
		for i := range dst {
			dst[i] = float32(int32(bo.Uint32(src[4*i:])))
		}
	case "int16":
		for i := range dst {
			dst[i] = float32(int16(bo.Uint16(src[2*i:])))
		}
	case "int8":
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case "uint8":
		for i := range dst {
			dst[i] = float32(src[i])
		}
	case "bool":
		for i := range dst {
			if src[i] != 0 {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	default:
		panic("loader: decodeChunk: unchecked dtype " + dtype)
	}
}

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
func gatherStrided(dst, src []float32, offset int, shape, stride []int) {
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
