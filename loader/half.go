package loader

import "math"

// halfToFloat32 converts IEEE 754 binary16 bits to float32 exactly: every
// half value, subnormals included, is representable in float32, and signs,
// infinities and NaN payloads are kept bit for bit, as NumPy keeps them.
// The .pt, .npy, safetensors and ONNX decoders all use it. (We do not use
// github.com/x448/float16 here: its Float32 sets the quiet bit of signalling
// NaNs, 0x7c01 → 0x7fc02000, where NumPy gives 0x7f802000.)
func halfToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		// Zero or subnormal: mant × 2^-24, exact in float32.
		f := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(math.Float32bits(f) | sign)
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
