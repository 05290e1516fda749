package convlstm

import (
	"errors"
	"fmt"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Load reads a weights file — a PyTorch .pt/.pth (zip or legacy), a
// safetensors file or an .npz of named arrays, told apart by content — and
// finds, infers and validates the ConvLSTM in it. (Package model opens
// ONNX graphs too.)
func Load(path string, opts Options) (*Model, error) {
	ck, err := loader.LoadCheckpoint(path)
	if err != nil {
		var ue *loader.UnsupportedError
		if format, derr := loader.DetectFile(path); derr == nil && format == loader.FormatONNX && errors.As(err, &ue) {
			return nil, fmt.Errorf("convlstm: %s is an ONNX graph, not a set of ConvLSTM weights: run it as a graph (package model or graph)", path)
		}
		return nil, err
	}
	return FromCheckpoint(ck, opts)
}

// FromCheckpoint finds the ConvLSTM among a loaded file's tensors. A gate
// order in opts wins over one recorded in the file's metadata (under
// MetaGates, as package export writes it); an architecture recorded under
// MetaConfig must agree with the weights.
func FromCheckpoint(ck *loader.Checkpoint, opts Options) (*Model, error) {
	if opts.Gates == "" {
		opts.Gates = ck.Metadata[MetaGates]
	}
	m, err := FromTensors(ck.File, ck.Names, ck.Tensors, opts)
	if err != nil {
		return nil, err
	}
	if err := finish(m, ck); err != nil {
		return nil, err
	}
	return m, nil
}

// FindAll describes every ConvLSTM among a loaded file's tensors (see
// FindAllTensors), with the file's metadata applied as FromCheckpoint
// applies it.
func FindAll(ck *loader.Checkpoint, opts Options) []Found {
	if opts.Gates == "" {
		opts.Gates = ck.Metadata[MetaGates]
	}
	found := FindAllTensors(ck.File, ck.Names, ck.Tensors, opts)
	for i := range found {
		if found[i].Model != nil {
			if err := finish(found[i].Model, ck); err != nil {
				found[i].Model, found[i].Err = nil, err
			}
		}
	}
	return found
}

// finish records the file's other entries in m.Source and checks the
// architecture recorded in its metadata.
func finish(m *Model, ck *loader.Checkpoint) error {
	if err := checkMetadata(ck.File, ck.Metadata, m); err != nil {
		return err
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
	return nil
}
