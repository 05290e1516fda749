package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AppendFloats appends src stored as float dtype dt in byte order bo:
// float32 and float64 exactly, float16 and bfloat16 rounded to nearest even.
func AppendFloats(dst []byte, src []float32, dt DType, bo binary.AppendByteOrder) []byte {
	switch dt {
	case Float32:
		for _, v := range src {
			dst = bo.AppendUint32(dst, math.Float32bits(v))
		}
	case Float64:
		for _, v := range src {
			dst = bo.AppendUint64(dst, math.Float64bits(float64(v)))
		}
	case Float16:
		for _, v := range src {
			dst = bo.AppendUint16(dst, Float32ToHalf(v))
		}
	case BFloat16:
		for _, v := range src {
			dst = bo.AppendUint16(dst, Float32ToBFloat16(v))
		}
	default:
		panic(fmt.Sprintf("tensor.AppendFloats: %q is not a float dtype", dt))
	}
	return dst
}

// AppendInts appends src stored as integer or bool dtype dt in byte order
// bo (values are truncated to the width; bools are 1 for any non-zero).
func AppendInts(dst []byte, src []int64, dt DType, bo binary.AppendByteOrder) []byte {
	for _, v := range src {
		switch dt.Size() {
		case 8:
			dst = bo.AppendUint64(dst, uint64(v))
		case 4:
			dst = bo.AppendUint32(dst, uint32(v))
		case 2:
			dst = bo.AppendUint16(dst, uint16(v))
		case 1:
			if dt == Bool && v != 0 {
				v = 1
			}
			dst = append(dst, byte(v))
		default:
			panic(fmt.Sprintf("tensor.AppendInts: %q is not an integer or bool dtype", dt))
		}
	}
	return dst
}

// Encode appends t's values stored as its own dtype (float32 when none is
// recorded) in byte order bo.
func (t *Tensor) Encode(dst []byte, bo binary.AppendByteOrder) []byte {
	if t.IsFloat() {
		dt := t.DType
		if dt == "" {
			dt = Float32
		}
		return AppendFloats(dst, t.Data, dt, bo)
	}
	return AppendInts(dst, t.Ints, t.DType, bo)
}
