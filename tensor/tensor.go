// Package tensor is the one array type every package of convlstm-go uses:
// a dense, row-major (C order) array with a shape and the element type it
// was stored as, and the one set of element decoders and encoders the file
// formats share.
//
// Floating-point values are held as float32 in Data, whatever their stored
// width (all computation here is float32); integer and boolean values are
// held exactly as int64 in Ints (booleans as 0 and 1). A tensor holds one or
// the other, never both, and DType says which.
package tensor

import (
	"fmt"
	"strings"
)

// Tensor is a dense, row-major array.
type Tensor struct {
	Shape []int
	// DType is the element type as stored (in the file, or as a graph
	// computes it): a float type for Data, an integer or bool type for Ints.
	DType DType
	Data  []float32 // float dtypes
	Ints  []int64   // integer and bool dtypes (bool: 0 or 1)
}

// New returns a zeroed float32 tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), DType: Float32, Data: make([]float32, Numel(shape))}
}

// FromFloats wraps data (not copied) as a float32 tensor of the given shape.
func FromFloats(data []float32, shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), DType: Float32, Data: data}
}

// FromInts wraps data (not copied) as a tensor of integer or bool dtype dt.
func FromInts(dt DType, data []int64, shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), DType: dt, Ints: data}
}

// IsFloat reports whether the values are in Data (a float dtype, or no
// dtype recorded).
func (t *Tensor) IsFloat() bool { return t.DType == "" || t.DType.IsFloat() }

// NumElements is the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int { return Numel(t.Shape) }

// Len is the number of values held (len(Data) or len(Ints)).
func (t *Tensor) Len() int {
	if t.IsFloat() {
		return len(t.Data)
	}
	return len(t.Ints)
}

// Check reports a tensor whose value count disagrees with its shape.
func (t *Tensor) Check() error {
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("tensor: shape %s has a negative dimension", ShapeString(t.Shape))
		}
	}
	if n := t.NumElements(); t.Len() != n {
		return fmt.Errorf("tensor: %d values for shape %s (%d elements)", t.Len(), ShapeString(t.Shape), n)
	}
	if t.IsFloat() && t.Ints != nil || !t.IsFloat() && t.Data != nil {
		return fmt.Errorf("tensor: %s tensor holds values of the other kind", t.DType)
	}
	return nil
}

// Floats returns the values as float32: Data itself for a float tensor, a
// converted copy for an integer or bool one.
func (t *Tensor) Floats() []float32 {
	if t.IsFloat() {
		return t.Data
	}
	f := make([]float32, len(t.Ints))
	for i, v := range t.Ints {
		f[i] = float32(v)
	}
	return f
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{Shape: append([]int(nil), t.Shape...), DType: t.DType}
	if t.Data != nil {
		c.Data = append([]float32(nil), t.Data...)
	}
	if t.Ints != nil {
		c.Ints = append([]int64(nil), t.Ints...)
	}
	return c
}

// Numel is the product of a shape's dimensions (1 for a scalar).
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ShapeString formats a shape as PyTorch does, e.g. "(64, 65, 3, 3)".
func ShapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	if len(shape) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
