package main

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/model"
	"github.com/convlstm-go/convlstm-go/tensor"
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

// openModel opens a model file ("" = the bundled example).
func openModel(path string, opts model.Options) (*model.Model, error) {
	if path == "" {
		return model.OpenBytes(exampleModelName, exampleModel, opts)
	}
	return model.Open(path, opts)
}

// parsePrecision reads --precision.
func parsePrecision(s string) (engine.Precision, error) {
	p, err := engine.ParsePrecision(s)
	if err != nil {
		return "", fmt.Errorf("--precision %q: want float32 (also fp32: exact, the default) or bf16 (bfloat16 weights: faster on CPUs with AVX512_BF16, errors up to ~1e-2 of the outputs' scale)", s)
	}
	return p, nil
}

// precisionFlagHelp is the --precision flag's help.
const precisionFlagHelp = "float32 (or fp32: exact, default) or bf16: bfloat16 weights, and VDPBF16PS on CPUs with AVX512_BF16 (faster; errors up to ~1e-2 of the outputs' scale); elsewhere float32 kernels on the rounded weights (not faster)"

// optionFlags names the flag behind each model option.
var optionFlags = map[string]string{
	"Prefix": "--prefix", "Gates": "--gates", "Direct": "--direct", "TimeFirst": "--time-first", "AllLayers": "--all-layers",
}

// flagError rewrites a *model.OptionError in terms of the flags given.
func flagError(err error) error {
	var oe *model.OptionError
	if !errors.As(err, &oe) {
		return err
	}
	what := "an ONNX graph, which runs as a whole"
	if oe.Kind == model.KindConvLSTM {
		what = "a native ConvLSTM"
	}
	parts := make([]string, len(oe.Options))
	for i, o := range oe.Options {
		f := optionFlags[o]
		if f == "" {
			f = o
		}
		parts[i] = f + " does not apply: " + oe.Why[i]
	}
	return fmt.Errorf("%s is %s: %s", oe.File, what, strings.Join(parts, "; "))
}

// inputSet is what --input and --state-in bind: a tensor per model input
// and, for messages, where each came from.
type inputSet struct {
	ts   map[string]*tensor.Tensor
	from map[string]string
	pics *framesInput // the input given as pictures, if any
}

func (s *inputSet) add(name, from string, t *tensor.Tensor) error {
	if prev, dup := s.from[name]; dup {
		return fmt.Errorf("input %q is given twice: by %s and by %s", name, prev, from)
	}
	s.ts[name], s.from[name] = t, from
	return nil
}

// where describes the sources of the inputs, for errors.
func (s *inputSet) where() string {
	var parts []string
	for _, k := range sortedKeys(s.from) {
		parts = append(parts, k+" from "+s.from[k])
	}
	return strings.Join(parts, ", ")
}

// bindInputs reads the --input values for model m: FILE.npy (the model's
// only required input), FILE.npz (one array per input, by name),
// NAME=FILE.npy, or pictures (a folder of frames, a folder of such folders,
// an image file; NAME=DIR, or the model's first input without a name);
// none at all is the bundled example input.
func bindInputs(m *model.Model, specs []string, pf pictureFlags, timeFirst bool) (*inputSet, error) {
	s := &inputSet{ts: map[string]*tensor.Tensor{}, from: map[string]string{}}
	if len(specs) == 0 {
		t, err := loader.DecodeNPY(exampleInputName, strings.NewReader(string(exampleInput)), int64(len(exampleInput)))
		if err != nil {
			return nil, err
		}
		return s, s.add("input", exampleInputName, t)
	}
	known := map[string]bool{}
	var required []model.IO
	for _, in := range m.Inputs() {
		known[in.Name] = true
		if !in.Optional {
			required = append(required, in)
		}
	}
	for _, spec := range specs {
		name, path := "", spec
		if _, err := os.Stat(spec); err != nil {
			if i := strings.IndexByte(spec, '='); i > 0 {
				name, path = spec[:i], spec[i+1:]
			}
		}
		if isPictures(path) {
			if s.pics != nil {
				return nil, fmt.Errorf("--input %s: pictures are already given for input %q (%s); one input may be pictures, the others .npy/.npz", spec, s.pics.name, s.pics.path)
			}
			in := m.Inputs()[0]
			if name != "" {
				if !known[name] {
					return nil, fmt.Errorf("--input %s: the model has no input %q; it takes %s", spec, name, ioNames(m.Inputs()))
				}
				for _, io := range m.Inputs() {
					if io.Name == name {
						in = io
					}
				}
			}
			t, fi, err := readFrames(m, in, path, pf, timeFirst)
			if err != nil {
				return nil, err
			}
			s.pics = fi
			if err := s.add(in.Name, fi.describe(), t); err != nil {
				return nil, err
			}
			continue
		}
		format, err := loader.DetectFile(path)
		if err != nil {
			return nil, err
		}
		switch format {
		case loader.FormatNPY:
			if name == "" {
				if len(required) != 1 {
					return nil, fmt.Errorf("--input %s: which input is it? The model takes %d required inputs (%s): give each as NAME=FILE.npy, or all in one .npz keyed by name", spec, len(required), ioNames(required))
				}
				name = required[0].Name
			}
			if !known[name] {
				return nil, fmt.Errorf("--input %s: the model has no input %q; it takes %s", spec, name, ioNames(m.Inputs()))
			}
			t, err := loader.ReadNPY(path)
			if err != nil {
				return nil, err
			}
			if err := s.add(name, path, t); err != nil {
				return nil, err
			}
		case loader.FormatNPZ:
			if name != "" {
				return nil, fmt.Errorf("--input %s: an .npz names its arrays itself; give it without %s=", spec, name)
			}
			ts, keys, err := loader.ReadNPZ(path)
			if err != nil {
				return nil, err
			}
			for _, k := range keys {
				if !known[k] {
					return nil, fmt.Errorf("%s: array %q matches no input of the model; it takes %s", path, k, ioNames(m.Inputs()))
				}
				if err := s.add(k, fmt.Sprintf("%s[%s]", path, k), ts[k]); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("%s: an input must be a NumPy .npy array, an .npz of arrays named after the model's inputs, or pictures (a folder of PNG/JPEG/GIF frames, a folder of such folders, an animated GIF); this is a %s file", path, format)
		}
	}
	return s, nil
}

// addState binds --state-in: h_l and c_l of every layer of a native model,
// from an .npz in the form `run --output` writes (its output arrays are
// not state and are not read). It returns the h_l/c_l arrays the file holds
// for layers the model does not have.
func addState(s *inputSet, m *model.Model, path string) (extra []string, err error) {
	ts, keys, err := loader.ReadNPZ(path)
	if err != nil {
		return nil, err
	}
	layers := len(m.Native.Layers)
	for l := 0; l < layers; l++ {
		hk, ck := fmt.Sprintf("h_%d", l), fmt.Sprintf("c_%d", l)
		for _, k := range []string{hk, ck} {
			if ts[k] == nil {
				return nil, fmt.Errorf("%s: the initial state needs %s and %s for each of the model's %d layers; %s is missing", path, hk, ck, layers, k)
			}
			if err := s.add(k, fmt.Sprintf("%s[%s]", path, k), ts[k]); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range keys {
		var l int
		var hc byte
		if n, _ := fmt.Sscanf(k, "%c_%d", &hc, &l); n == 2 && (hc == 'h' || hc == 'c') && k == fmt.Sprintf("%c_%d", hc, l) && l >= layers {
			extra = append(extra, k)
		}
	}
	return extra, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func ioNames(ios []model.IO) string {
	s := make([]string, len(ios))
	for i, io := range ios {
		s[i] = io.String()
	}
	return strings.Join(s, ", ")
}
