package server

import (
	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/loader"
)

// OpenOptions select which ConvLSTM of a weights file to serve and how
// to run it.
type OpenOptions struct {
	Threads int    // worker threads (0: all cores)
	Prefix  string // which ConvLSTM in the file (see convlstm.Options)
	Gates   string // gate order (see convlstm.Options)
}

// Open loads any file `convlstm-run run` accepts: PyTorch .pt/.pth,
// safetensors, .npz weights (served natively) or an ONNX graph.
func Open(path string, opts OpenOptions) (Backend, error) {
	format, err := loader.DetectFile(path)
	if err != nil {
		return nil, err
	}
	if format == loader.FormatONNX {
		g, err := graph.Load(path, graph.Options{Threads: opts.Threads})
		if err != nil {
			return nil, err
		}
		return NewONNX(g)
	}
	m, err := convlstm.Load(path, convlstm.Options{Prefix: opts.Prefix, Gates: opts.Gates})
	if err != nil {
		return nil, err
	}
	return NewNative(m, opts.Threads)
}
