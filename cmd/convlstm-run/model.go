package main

import (
	_ "embed"
	"fmt"
	"os"
	"strings"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/loader"
)

// The example model and input that `run` uses when given no files; written
// by scripts/make_example.py with PyTorch.
var (
	//go:embed example/model.pt
	exampleModel []byte
	//go:embed example/input.npy
	exampleInput []byte
)

const (
	exampleModelName = "(bundled example model)"
	exampleInputName = "(bundled example input)"
)

// loadCheckpoint reads a weights file of any supported format, told apart by
// content, into named tensors.
func loadCheckpoint(path string) (*loader.Checkpoint, error) {
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
		return nil, fmt.Errorf("%s is an ONNX model: it runs as a graph (convlstm-run run --weights %s), not as ConvLSTM weights", path, path)
	}
	return nil, fmt.Errorf("%s: a %s file holds one array, not model weights", path, format)
}

// loadModel finds and validates the ConvLSTM in a weights file ("" = the
// bundled example).
func loadModel(path, prefix, gates string) (*convlstm.Model, *loader.Checkpoint, error) {
	var ck *loader.Checkpoint
	var err error
	if path == "" {
		ck, err = loader.LoadPTBytes(exampleModelName, exampleModel)
	} else {
		ck, err = loadCheckpoint(path)
	}
	if err != nil {
		return nil, nil, err
	}
	if gates == "" {
		gates = ck.Metadata[loader.MetaGates]
	}
	m, err := convlstm.FromTensors(ck.File, ck.Names, ck.Tensors, convlstm.Options{Prefix: prefix, Gates: gates})
	if err != nil {
		return nil, ck, err
	}
	m.Source.Format = ck.Format
	m.Source.Skipped = ck.Skipped
	m.Source.Ignored = ck.Ignored
	// Every tensor of the file that the model does not use is reported too.
	used := map[string]bool{}
	for _, k := range m.Source.Keys {
		used[k] = true
	}
	for _, n := range ck.Names {
		if !used[n] {
			m.Source.Skipped = append(m.Source.Skipped, n+" (tensor, not part of this ConvLSTM)")
		}
	}
	return m, ck, nil
}

// readInput reads the input array ("" = the bundled example).
func readInput(path string) (*loader.Tensor, error) {
	if path == "" {
		return loader.DecodeNPY(exampleInputName, strings.NewReader(string(exampleInput)), int64(len(exampleInput)))
	}
	format, err := loader.DetectFile(path)
	if err != nil {
		return nil, err
	}
	if format != loader.FormatNPY {
		return nil, fmt.Errorf("%s: the input must be a NumPy .npy array, this is a %s file", path, format)
	}
	return loader.ReadNPY(path)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
