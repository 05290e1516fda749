package server

import (
	modelfile "github.com/convlstm-go/convlstm-go/model"
)

// OpenOptions select which ConvLSTM of a weights file to serve and how
// to run it.
type OpenOptions struct {
	Threads int    // worker threads (0: all cores)
	Prefix  string // which ConvLSTM in the file (weights files only)
	Gates   string // gate order (weights files only)
}

// Open loads any file `convlstm-run run` accepts (package model tells the
// format from the content): a ConvLSTM in PyTorch .pt/.pth, safetensors
// or .npz weights is served natively, an ONNX graph by the interpreter.
func Open(path string, opts OpenOptions) (Backend, error) {
	m, err := modelfile.Open(path, modelfile.Options{Prefix: opts.Prefix, Gates: opts.Gates, Threads: opts.Threads})
	if err != nil {
		return nil, err
	}
	if m.Kind == modelfile.KindGraph {
		return NewONNX(m.Graph)
	}
	cm := m.Native
	m.Close()
	return NewNative(cm, opts.Threads)
}
