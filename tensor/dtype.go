package tensor

// DType is an element type, named as NumPy names it.
type DType string

// The element types the file formats store. Float types are held as
// float32 (Tensor.Data), the others exactly as int64 (Tensor.Ints).
const (
	Float32  DType = "float32"
	Float64  DType = "float64"
	Float16  DType = "float16"
	BFloat16 DType = "bfloat16"
	Int64    DType = "int64"
	Int32    DType = "int32"
	Int16    DType = "int16"
	Int8     DType = "int8"
	Uint64   DType = "uint64"
	Uint32   DType = "uint32"
	Uint16   DType = "uint16"
	Uint8    DType = "uint8"
	Bool     DType = "bool"
)

var sizes = map[DType]int{
	Float32: 4, Float64: 8, Float16: 2, BFloat16: 2,
	Int64: 8, Int32: 4, Int16: 2, Int8: 1, Uint64: 8, Uint32: 4, Uint16: 2, Uint8: 1, Bool: 1,
}

// Size is the stored width in bytes (0 for an unknown dtype).
func (d DType) Size() int { return sizes[d] }

// Known reports whether d is one of the dtypes above.
func (d DType) Known() bool { return sizes[d] != 0 }

// IsFloat reports a floating-point dtype.
func (d DType) IsFloat() bool {
	return d == Float32 || d == Float64 || d == Float16 || d == BFloat16
}

// IsInt reports an integer or bool dtype (held in Tensor.Ints).
func (d DType) IsInt() bool { return d.Known() && !d.IsFloat() }

func (d DType) String() string { return string(d) }
