// Package loader turns weight and array files (PyTorch .pt, NumPy .npy/.npz,
// safetensors, ONNX initialisers) into named float32 tensors.
//
// Every length, shape and offset read from a file is checked against the
// bytes that are actually present before anything is allocated, and no
// loader panics on malformed input: errors are *FormatError (the file is
// broken) or *UnsupportedError (a valid feature we do not handle), and both
// name the file and the record or key at fault.
package loader

import (
	"fmt"
	"strings"
)

// Tensor is a dense, row-major (C order) float32 array.
type Tensor struct {
	Shape []int
	Data  []float32
	// DType is the element type the value was stored as in the file
	// ("float32", "float16", "bfloat16", "float64", "int64", ...). Data is
	// always float32.
	DType string
}

// NumElements is the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
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

// FormatError reports a file that is broken or not what it claims to be.
type FormatError struct {
	File   string // path of the file
	Record string // record, key or entry inside it; may be empty
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Record != "" {
		return fmt.Sprintf("loader: invalid format: %s: %s: %s", e.File, e.Record, e.Msg)
	}
	return fmt.Sprintf("loader: invalid format: %s: %s", e.File, e.Msg)
}

// UnsupportedError reports a valid file feature that we do not handle.
type UnsupportedError struct {
	File   string
	Record string
	Msg    string
}

func (e *UnsupportedError) Error() string {
	if e.Record != "" {
		return fmt.Sprintf("loader: unsupported: %s: %s: %s", e.File, e.Record, e.Msg)
	}
	return fmt.Sprintf("loader: unsupported: %s: %s", e.File, e.Msg)
}
