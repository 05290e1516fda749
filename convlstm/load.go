package convlstm

import (
	"github.com/convlstm-go/convlstm-go/tensor"

	"fmt"

	"github.com/convlstm-go/convlstm-go/loader"
)

// Load reads a weights file — a PyTorch .pt/.pth (zip or legacy), a
// safetensors file or an .npz of named arrays, told apart by content — and
// finds, infers and validates the ConvLSTM in it.
func Load(path string, opts Options) (*Model, error) {
	ck, err := LoadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	return FromCheckpoint(ck, opts)
}

// LoadCheckpoint reads a weights file of any supported format into named
// tensors, without looking for a model in it.
func LoadCheckpoint(path string) (*loader.Checkpoint, error) {
	format, err := loader.DetectFile(path)
	if err != nil {
		return nil, err
	}
	switch format {
	case loader.FormatPTZip, loader.FormatPTLegacy:
		return loader.LoadPT(path)
	case loader.FormatSafetensors:
		return loader.LoadSafetensors(path)
	case loader.FormatNPZ:
		ts, names, err := loader.ReadNPZ(path)
		if err != nil {
			return nil, err
		}
		return &loader.Checkpoint{File: path, Format: format, Names: names, Tensors: ts}, nil
	case loader.FormatONNX:
		return nil, fmt.Errorf("convlstm: %s is an ONNX graph, not a set of ConvLSTM weights: run it as a graph", path)
	}
	return nil, fmt.Errorf("convlstm: %s: a %s file holds one array, not model weights", path, format)
}

// FromCheckpoint finds the ConvLSTM among a loaded file's tensors. A gate
// order in opts wins over one recorded in the file's metadata (as our
// safetensors export writes it).
func FromCheckpoint(ck *loader.Checkpoint, opts Options) (*Model, error) {
	if opts.Gates == "" {
		opts.Gates = ck.Metadata[loader.MetaGates]
	}
	m, err := FromTensors(ck.File, ck.Names, ck.Tensors, opts)
	if err != nil {
		return nil, err
	}
	m.Source.Format = ck.Format
	m.Source.Ignored = ck.Ignored
	m.Source.Skipped = append([]string(nil), ck.Skipped...)
	used := map[string]bool{}
	for _, k := range m.Source.Keys {
		used[k] = true
	}
	for _, n := range ck.Names {
		if !used[n] {
			t := ck.Tensors[n]
			m.Source.Skipped = append(m.Source.Skipped, fmt.Sprintf("%s %s %s (tensor, not part of this ConvLSTM)", n, t.DType, tensor.ShapeString(t.Shape)))
		}
	}
	return m, nil
}
