package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The decoders below are the only ones: the .pt, .npy, safetensors and ONNX
// readers and the server's binary tensors all call them, so every format
// reads a dtype the same way. Booleans follow one rule everywhere: a byte
// that is not zero is true (1), as NumPy and PyTorch read them.

// DecodeFloats converts len(dst) elements of type dt, stored in src in byte
// order bo, to float32: floats by IEEE rounding (float16 and bfloat16
// exactly), integers by conversion, booleans as 0 or 1. src must hold at
// least len(dst)·dt.Size() bytes.
func DecodeFloats(dst []float32, src []byte, dt DType, bo binary.ByteOrder) {
	n := len(dst)
	src = src[:n*dt.Size()]
	switch dt {
	case Float32:
		if bo == binary.LittleEndian {
			for i := range dst {
				dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
			}
			return
		}
		for i := range dst {
			dst[i] = math.Float32frombits(bo.Uint32(src[4*i:]))
		}
	case Float64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(bo.Uint64(src[8*i:])))
		}
	case Float16:
		for i := range dst {
			dst[i] = HalfToFloat32(bo.Uint16(src[2*i:]))
		}
	case BFloat16:
		for i := range dst {
			dst[i] = BFloat16ToFloat32(bo.Uint16(src[2*i:]))
		}
	default:
		// Integer and bool types: through the exact int64 decoder, in
		// blocks so no second full-size buffer is needed.
		var buf [256]int64
		for i := 0; i < n; i += len(buf) {
			m := min(len(buf), n-i)
			DecodeInts(buf[:m], src[i*dt.Size():], dt, bo)
			for j, v := range buf[:m] {
				dst[i+j] = float32(v)
			}
		}
	}
}

// DecodeInts converts len(dst) elements of integer or bool type dt, stored
// in src in byte order bo, to int64 exactly (uint64 values above 2^63-1
// wrap). It panics on a float dtype: callers pick the decoder by
// dt.IsFloat().
func DecodeInts(dst []int64, src []byte, dt DType, bo binary.ByteOrder) {
	src = src[:len(dst)*dt.Size()]
	switch dt {
	case Int64, Uint64:
		for i := range dst {
			dst[i] = int64(bo.Uint64(src[8*i:]))
		}
	case Int32:
		for i := range dst {
			dst[i] = int64(int32(bo.Uint32(src[4*i:])))
		}
	case Uint32:
		for i := range dst {
			dst[i] = int64(bo.Uint32(src[4*i:]))
		}
	case Int16:
		for i := range dst {
			dst[i] = int64(int16(bo.Uint16(src[2*i:])))
		}
	case Uint16:
		for i := range dst {
			dst[i] = int64(bo.Uint16(src[2*i:]))
		}
	case Int8:
		for i := range dst {
			dst[i] = int64(int8(src[i]))
		}
	case Uint8:
		for i := range dst {
			dst[i] = int64(src[i])
		}
	case Bool:
		for i := range dst {
			if src[i] != 0 {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	default:
		panic(fmt.Sprintf("tensor.DecodeInts: %q is not an integer or bool dtype", dt))
	}
}

// Decode reads n elements of dt from src (byte order bo) into a new tensor
// of the given shape: Data for float dtypes, Ints otherwise. src must hold
// n·dt.Size() bytes.
func Decode(src []byte, dt DType, bo binary.ByteOrder, shape []int) *Tensor {
	n := Numel(shape)
	t := &Tensor{Shape: append([]int(nil), shape...), DType: dt}
	if dt.IsFloat() {
		t.Data = make([]float32, n)
		DecodeFloats(t.Data, src, dt, bo)
	} else {
		t.Ints = make([]int64, n)
		DecodeInts(t.Ints, src, dt, bo)
	}
	return t
}
