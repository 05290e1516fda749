package main

import (
	"github.com/convlstm-go/convlstm-go/tensor"

	_ "embed"
	"fmt"
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

// loadModel finds and validates the ConvLSTM in a weights file ("" = the
// bundled example).
func loadModel(path, prefix, gates string) (*convlstm.Model, error) {
	opts := convlstm.Options{Prefix: prefix, Gates: gates}
	if path != "" {
		return convlstm.Load(path, opts)
	}
	ck, err := loader.LoadPTBytes(exampleModelName, exampleModel)
	if err != nil {
		return nil, err
	}
	return convlstm.FromCheckpoint(ck, opts)
}

// readInput reads the input array ("" = the bundled example).
func readInput(path string) (*tensor.Tensor, error) {
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
