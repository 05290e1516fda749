// Package model opens any model file this project runs — a PyTorch
// .pt/.pth (zip or legacy), safetensors or .npz state_dict holding a
// ConvLSTM, or an ONNX graph — through one call, and runs it through one
// call: the format is told from the content, never the name, and the rest
// of the program need not know which it was.
//
// Open is to Inspect what image.Decode is to image.DecodeConfig: Inspect
// reads only the structure (names, shapes, dtypes, ops) and describes every
// model in the file in one layout, whatever the format.
//
// A native ConvLSTM (Kind KindConvLSTM) takes
//
//	input   float (B, T, C, H, W), or (T, B, C, H, W) with RunOptions.TimeFirst
//	h_l, c_l  optional initial state of layer l, (B, hidden_l, H, W): all
//	          layers or none (none: zeros, as ConvLSTM_pytorch starts)
//
// and returns
//
//	output    the last layer's hidden state at every step, in the input's layout
//	h_l, c_l  every layer's state after the last step
//	output_l  every layer's sequence, with RunOptions.AllLayers
//
// (the form `convlstm-run run` writes). A graph (KindGraph) takes and
// returns the tensors its inputs and outputs name. Inputs and Outputs list
// both.
package model

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/engine"
	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/runtime"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Kind says how a model runs.
type Kind string

const (
	// KindConvLSTM is a ConvLSTM found among a weights file's tensors, run
	// by package runtime.
	KindConvLSTM Kind = "convlstm"
	// KindGraph is an ONNX graph, run by package graph.
	KindGraph Kind = "graph"
)

// Options choose what to open and how to run it. A field that does not
// apply to the file opened is an error, never ignored.
type Options struct {
	// Prefix chooses the ConvLSTM among a weights file's tensors when there
	// are several (see convlstm.Options.Prefix). Weights files only.
	Prefix string
	// Gates is the gate order of the conv's output blocks, a permutation
	// of "ifog"; "" takes the file's metadata, else ifog. Weights files
	// only: a graph's cells carry their order in their structure.
	Gates string
	// Threads is the number of worker threads (0: one per CPU).
	Threads int
	// Direct runs every convolution as a direct convolution, never
	// Winograd (runtime.Options.Direct), for comparison. Native only.
	Direct bool
	// Precision is the convolutions' arithmetic: "" or "float32" (exact,
	// the default) or "bf16": weights packed as bfloat16 and, where the
	// CPU has AVX512_BF16, VDPBF16PS with float32 accumulation (faster;
	// errors up to ~1e-2 of the outputs' scale); elsewhere float32 kernels
	// on the rounded weights (same weights, not faster). See
	// engine.BFloat16 and Model.PrecisionPath. Native ConvLSTMs and
	// graphs (their initialiser-weight Conv nodes and fused cells).
	Precision engine.Precision
}

// RunOptions tune one Run.
type RunOptions struct {
	// TimeFirst: input and outputs are (T, B, ...) rather than (B, T, ...).
	// Native only.
	TimeFirst bool
	// AllLayers: also return output_l, every layer's sequence. Native only.
	AllLayers bool
}

// IO describes an input or output.
type IO struct {
	Name  string       `json:"name"`
	DType tensor.DType `json:"dtype"`
	// Dims holds each dimension's size, -1 when dynamic; nil when even the
	// rank is unknown (a scalar has an empty, non-nil Dims).
	Dims []int `json:"dims"`
	// Symbols names the dynamic dimensions ("batch", "time", ...), "" for
	// fixed or unnamed ones; nil when none is named.
	Symbols []string `json:"symbols,omitempty"`
	// Optional: an input that may be left out, or an output produced only
	// on request (RunOptions.AllLayers).
	Optional bool `json:"optional,omitempty"`

	axes []string // what each dimension is, when known (for messages)
}

// DimString formats the shape as "(batch, time, 2, height, width)": sizes,
// symbolic names, "?" for unnamed dynamic dimensions.
func (io IO) DimString() string {
	if io.Dims == nil {
		return "(rank unknown)"
	}
	parts := make([]string, len(io.Dims))
	for i, d := range io.Dims {
		switch {
		case d >= 0:
			parts[i] = fmt.Sprint(d)
		case i < len(io.Symbols) && io.Symbols[i] != "":
			parts[i] = io.Symbols[i]
		default:
			parts[i] = "?"
		}
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func (io IO) String() string {
	s := fmt.Sprintf("%s %s %s", io.Name, io.DType, io.DimString())
	if io.Optional {
		s += " (optional)"
	}
	return s
}

// Model is an opened model. Run is safe for concurrent use: a graph runs
// calls concurrently, a native ConvLSTM one at a time (each run already
// uses every worker thread).
type Model struct {
	File   string
	Format string // loader.Format*: "pytorch-zip", "pytorch-legacy", "safetensors", "npz", "onnx"
	Kind   Kind
	// Native is the ConvLSTM (KindConvLSTM), Graph the compiled graph
	// (KindGraph); the other is nil.
	Native *convlstm.Model
	Graph  *graph.Graph
	// Metadata is the file's free-form metadata (safetensors __metadata__,
	// ONNX metadata_props, .pt archive records); may be nil.
	Metadata map[string]string

	opts            Options
	inputs, outputs []IO

	mu     sync.Mutex // guards runner and closed
	runner *runtime.Runner
	closed bool
}

// Open reads the model in the file at path.
func Open(path string, opts Options) (*Model, error) {
	return open(path, nil, opts)
}

// OpenBytes reads a model held in memory (an embedded example, an upload);
// name is used in errors. An ONNX model so read cannot use external data.
func OpenBytes(name string, data []byte, opts Options) (*Model, error) {
	if data == nil {
		data = []byte{}
	}
	return open(name, data, opts)
}

// detect tells a file's format (data == nil: read the file at name).
func detect(name string, data []byte) (string, error) {
	if data == nil {
		return loader.DetectFile(name)
	}
	return loader.DetectBytes(name, data)
}

func open(name string, data []byte, opts Options) (*Model, error) {
	prec, err := engine.ParsePrecision(string(opts.Precision))
	if err != nil {
		return nil, fmt.Errorf("model: Precision: %w", err)
	}
	opts.Precision = prec
	format, err := detect(name, data)
	if err != nil {
		return nil, err
	}
	switch format {
	case loader.FormatONNX:
		return openGraph(name, data, opts)
	case loader.FormatNPY:
		return nil, fmt.Errorf("model: %s is a NumPy array (.npy), not a model: give a .pt/.pth, safetensors, .npz state_dict or ONNX file (an array is an input)", name)
	}
	var ck *loader.Checkpoint
	if data == nil {
		ck, err = loader.LoadCheckpoint(name)
	} else {
		ck, err = loader.LoadCheckpointBytes(name, data)
	}
	if err != nil {
		return nil, err
	}
	cm, err := convlstm.FromCheckpoint(ck, convlstm.Options{Prefix: opts.Prefix, Gates: opts.Gates})
	if err != nil {
		return nil, err
	}
	return FromConvLSTM(cm, ck.Metadata, opts)
}

// FromConvLSTM wraps a ConvLSTM built or loaded elsewhere (its Source says
// where from). Prefix and Gates in opts are not used: the model is chosen.
func FromConvLSTM(cm *convlstm.Model, metadata map[string]string, opts Options) (*Model, error) {
	if err := cm.Validate(); err != nil {
		return nil, err
	}
	prec, err := engine.ParsePrecision(string(opts.Precision))
	if err != nil {
		return nil, fmt.Errorf("model: Precision: %w", err)
	}
	opts.Precision = prec
	m := &Model{File: cm.Source.File, Format: cm.Source.Format, Kind: KindConvLSTM, Native: cm, Metadata: metadata, opts: opts}
	m.inputs, m.outputs = nativeIO(cm.Config())
	return m, nil
}

// OptionError reports options that do not apply to the model opened.
type OptionError struct {
	File string
	Kind Kind
	// Options are the offending fields of Options or RunOptions ("Prefix",
	// "Gates", "Direct", "TimeFirst", "AllLayers"), each with why it does
	// not apply.
	Options []string
	Why     []string
}

func (e *OptionError) Error() string {
	parts := make([]string, len(e.Options))
	for i := range e.Options {
		parts[i] = e.Options[i] + ": " + e.Why[i]
	}
	what := "an ONNX graph, which runs as a whole"
	if e.Kind == KindConvLSTM {
		what = "a native ConvLSTM"
	}
	return fmt.Sprintf("model: %s is %s; options that do not apply: %s", e.File, what, strings.Join(parts, "; "))
}

func (e *OptionError) add(opt, why string) {
	e.Options = append(e.Options, opt)
	e.Why = append(e.Why, why)
}

func (e *OptionError) orNil() error {
	if len(e.Options) == 0 {
		return nil
	}
	return e
}

// CheckOptions reports, as an *OptionError, the options and run options
// that do not apply to a model of the given kind (file is used in the
// message); nil when all apply. Open and Run check their own; a caller
// holding both can ask about all of them at once.
func CheckOptions(file string, kind Kind, opts Options, run RunOptions) error {
	if kind == KindConvLSTM {
		return nil
	}
	bad := &OptionError{File: file, Kind: kind}
	if opts.Prefix != "" {
		bad.add("Prefix", "it chooses a ConvLSTM among a weights file's tensors (to extract the ConvLSTM a graph holds, convert it)")
	}
	if opts.Gates != "" {
		bad.add("Gates", "a gate order applies to ConvLSTM weights; a graph's cells carry theirs in their structure")
	}
	if opts.Direct {
		bad.add("Direct", "direct convolution is an option of the native ConvLSTM runtime")
	}
	if run.TimeFirst {
		bad.add("TimeFirst", "a graph's inputs and outputs have the layout the graph declares")
	}
	if run.AllLayers {
		bad.add("AllLayers", "a graph returns the outputs it declares")
	}
	return bad.orNil()
}

func openGraph(name string, data []byte, opts Options) (*Model, error) {
	if err := CheckOptions(name, KindGraph, opts, RunOptions{}); err != nil {
		return nil, err
	}
	om, err := readONNX(name, data)
	if err != nil {
		return nil, err
	}
	g, err := graph.Compile(om, graph.Options{Threads: opts.Threads, Precision: opts.Precision})
	if err != nil {
		return nil, err
	}
	m := &Model{File: name, Format: loader.FormatONNX, Kind: KindGraph, Graph: g, Metadata: onnxMetadata(om), opts: opts}
	for _, vi := range g.Inputs() {
		m.inputs = append(m.inputs, ioFromGraph(vi))
	}
	for _, vi := range g.Outputs() {
		m.outputs = append(m.outputs, ioFromGraph(vi))
	}
	return m, nil
}

func readONNX(name string, data []byte) (*loader.ONNXModel, error) {
	if data == nil {
		return loader.LoadONNX(name)
	}
	return loader.ParseONNX(name, data, "")
}

// OpenConvLSTM returns the ConvLSTM a file holds, whatever its format: the
// one among a weights file's tensors (as Open finds it), or the one whose
// weights an ONNX graph's initialisers hold (graph.ConvLSTM: the gate order
// is read from the graph's cells unless opts.Gates says it). This is what
// `convert` writes out in another format.
func OpenConvLSTM(path string, opts Options) (*convlstm.Model, error) {
	format, err := loader.DetectFile(path)
	if err != nil {
		return nil, err
	}
	if format != loader.FormatONNX {
		m, err := Open(path, opts)
		if err != nil {
			return nil, err
		}
		defer m.Close()
		return m.Native, nil
	}
	om, err := loader.LoadONNX(path)
	if err != nil {
		return nil, err
	}
	g, err := graph.Compile(om, graph.Options{Threads: 1})
	if err != nil {
		if opts.Gates == "" {
			return nil, fmt.Errorf("%w (the gate order of the graph's ConvLSTM is read from its compiled cells; with --gates the weights can be taken without compiling)", err)
		}
		g = nil
	}
	return graph.ConvLSTM(om, g, convlstm.Options{Prefix: opts.Prefix, Gates: opts.Gates})
}

// Inputs lists what Run takes, in order. For a native ConvLSTM the layout
// shown is batch-first; with RunOptions.TimeFirst the first two
// dimensions of input (and of output, output_l) swap.
func (m *Model) Inputs() []IO { return m.inputs }

// Outputs lists what Run returns, in order (for a native ConvLSTM,
// output_l only with RunOptions.AllLayers).
func (m *Model) Outputs() []IO { return m.outputs }

// Precision reports the convolutions' precision (engine.Float32 or
// engine.BFloat16).
func (m *Model) Precision() engine.Precision { return m.opts.Precision }

// PrecisionPath says how the precision runs on this machine
// (engine.PrecisionPath): "float32", "bf16 (avx512bf16: VDPBF16PS)" or
// "bf16 (converted to float32: ...)".
func (m *Model) PrecisionPath() string { return engine.PrecisionPath(m.opts.Precision) }

// Threads reports the worker threads runs use.
func (m *Model) Threads() int { return threadCount(m.opts.Threads) }

// Close releases the worker threads. The model must not be run afterwards.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runner != nil {
		m.runner.Close()
		m.runner = nil
	}
	m.closed = true
	return nil
}

// errClosed is returned by Run after Close.
var errClosed = errors.New("model: the model is closed")

// nativeRunner returns the runtime, started at first use.
func (m *Model) nativeRunner() (*runtime.Runner, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	if m.runner == nil {
		r, err := runtime.New(m.Native, runtime.Options{Threads: m.opts.Threads, Direct: m.opts.Direct, Precision: m.opts.Precision})
		if err != nil {
			return nil, err
		}
		m.runner = r
	}
	return m.runner, nil
}

// nativeIO describes a ConvLSTM's inputs and outputs.
func nativeIO(layers []convlstm.LayerConfig) (in, out []IO) {
	seq := func(name string, c int, opt bool) IO {
		return IO{Name: name, DType: tensor.Float32, Dims: []int{-1, -1, c, -1, -1}, Symbols: []string{"batch", "time", "", "height", "width"}, Optional: opt,
			axes: []string{"batch", "time", "channels", "height", "width"}}
	}
	state := func(name string, c int, opt bool) IO {
		return IO{Name: name, DType: tensor.Float32, Dims: []int{-1, c, -1, -1}, Symbols: []string{"batch", "", "height", "width"}, Optional: opt,
			axes: []string{"batch", "hidden channels", "height", "width"}}
	}
	in = append(in, seq("input", layers[0].InputDim, false))
	out = append(out, seq("output", layers[len(layers)-1].HiddenDim, false))
	for l, c := range layers {
		in = append(in, state(fmt.Sprintf("h_%d", l), c.HiddenDim, true), state(fmt.Sprintf("c_%d", l), c.HiddenDim, true))
		out = append(out, state(fmt.Sprintf("h_%d", l), c.HiddenDim, false), state(fmt.Sprintf("c_%d", l), c.HiddenDim, false))
	}
	for l, c := range layers {
		out = append(out, seq(fmt.Sprintf("output_%d", l), c.HiddenDim, true))
	}
	return in, out
}

// ioFromGraph converts a graph's value info: numbers stay sizes, named
// dimensions become -1 with their symbol, "?" becomes -1 unnamed.
func ioFromGraph(vi graph.ValueInfo) IO {
	io := IO{Name: vi.Name, DType: tensor.DType(vi.Type)}
	if vi.Dims == nil {
		return io
	}
	io.Dims = make([]int, len(vi.Dims))
	named := false
	syms := make([]string, len(vi.Dims))
	for i, d := range vi.Dims {
		var v int
		if _, err := fmt.Sscanf(d, "%d", &v); err == nil && fmt.Sprint(v) == d {
			io.Dims[i] = v
			continue
		}
		io.Dims[i] = -1
		if d != "?" {
			syms[i], named = d, true
		}
	}
	if named {
		io.Symbols = syms
	}
	return io
}

func names(ios []IO) string {
	s := make([]string, len(ios))
	for i, io := range ios {
		s[i] = io.String()
	}
	return strings.Join(s, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func onnxMetadata(om *loader.ONNXModel) map[string]string {
	var meta map[string]string
	for _, kv := range om.Proto.GetMetadataProps() {
		if meta == nil {
			meta = map[string]string{}
		}
		meta[kv.GetKey()] = kv.GetValue()
	}
	return meta
}
