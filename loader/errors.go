// Package loader reads and writes file formats: weight and array files
// (PyTorch .pt, NumPy .npy/.npz, safetensors, ONNX initialisers) become
// named tensor.Tensors, and arrays are written as .npy/.npz.
//
// Every length, shape and offset read from a file is checked against the
// bytes that are actually present before anything is allocated, and no
// loader panics on malformed input: errors are *FormatError (the file is
// broken) or *UnsupportedError (a valid feature we do not handle), and both
// name the file and the record or key at fault.
package loader

import "fmt"

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
