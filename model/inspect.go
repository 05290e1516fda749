package model

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Description is what Inspect reads from a file: the file itself and every
// model in it, in one layout for every format.
type Description struct {
	File     string            `json:"file"`
	Format   string            `json:"format"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Tensors counts the named tensors (a graph's initialisers), Values
	// their elements, DTypes their stored element types.
	Tensors int      `json:"tensors"`
	Values  int64    `json:"values"`
	DTypes  []string `json:"dtypes"`
	// Models lists every model found: for a weights file each ConvLSTM
	// among its tensors; for an ONNX file the graph, then each ConvLSTM
	// whose weights its initialisers hold. Problem says why there is none.
	Models  []ModelInfo `json:"models"`
	Problem string      `json:"problem,omitempty"`
	// Skipped lists entries that are no model's: non-tensors (an epoch, an
	// optimizer's scalars) and tensors outside every ConvLSTM found.
	Skipped []string `json:"skipped,omitempty"`
	// Ignored lists the pickle globals given no meaning (never executed).
	Ignored []string `json:"ignored,omitempty"`
}

// ModelInfo describes one model in a file.
type ModelInfo struct {
	Kind Kind `json:"kind"`
	// Name is a ConvLSTM's key prefix ("" for the top level) or "graph".
	Name string `json:"name"`
	// Use is the command that runs (or, for a ConvLSTM inside a graph,
	// extracts) it, e.g. "run --prefix enc1".
	Use string `json:"use"`
	// Runnable says whether Use works; Problem says why not.
	Runnable bool          `json:"runnable"`
	Problem  string        `json:"problem,omitempty"`
	Inputs   []IO          `json:"inputs"`
	Outputs  []IO          `json:"outputs"`
	ConvLSTM *ConvLSTMInfo `json:"convlstm,omitempty"`
	Graph    *GraphInfo    `json:"graph,omitempty"`
}

// ConvLSTMInfo is a ConvLSTM's architecture, inferred from its weights'
// shapes.
type ConvLSTMInfo struct {
	Prefix string `json:"prefix"`
	Kind   string `json:"kind"` // "cell_list" (a ConvLSTM stack) or "cell" (one ConvLSTMCell)
	Gates  string `json:"gates"`
	// GatesFrom says where the gate order came from: "option" (asked
	// for), "metadata" (recorded in the file), "graph" (read from the
	// graph's cell updates) or "default" (ifog, ConvLSTM_pytorch's).
	GatesFrom string      `json:"gates_from"`
	Layers    []LayerInfo `json:"layers"`
	Params    int         `json:"params"`
	DTypes    []string    `json:"dtypes"`
	Keys      []string    `json:"keys"`
}

// LayerInfo is one layer's architecture and parameter count.
type LayerInfo struct {
	convlstm.LayerConfig
	Params int `json:"params"`
}

// GraphInfo is an ONNX graph's structure.
type GraphInfo struct {
	IRVersion int64          `json:"ir_version"`
	Opset     int64          `json:"opset"`
	Producer  string         `json:"producer"`
	Nodes     int            `json:"nodes"`     // all nodes, subgraphs included
	Subgraphs int            `json:"subgraphs"` // Scan/Loop/If bodies
	Ops       map[string]int `json:"ops"`       // op type → count, subgraphs included
	// Unsupported lists every op type the interpreter does not run, at
	// once (read from the structure alone).
	Unsupported []OpUse `json:"unsupported,omitempty"`
	// Problems lists every problem compiling the graph would report, at
	// once (graph.Check): each unsupported op, opset or attribute, each
	// malformed node.
	Problems []Problem `json:"problems,omitempty"`
	// Cells counts the ConvLSTM cell updates recognised (and fused), by
	// gate order read from the graph's structure, e.g. {"ifog": 6}.
	Cells map[string]int `json:"cells,omitempty"`
}

// Problem is one problem with a graph's node (or the graph itself when
// Node is empty).
type Problem struct {
	Node        string `json:"node,omitempty"`
	Op          string `json:"op,omitempty"`
	Attr        string `json:"attr,omitempty"`        // the attribute at fault, if any
	Unsupported bool   `json:"unsupported,omitempty"` // valid ONNX we do not implement (else malformed)
	Message     string `json:"message"`
}

// OpUse is an op type and the nodes that use it.
type OpUse struct {
	Op    string   `json:"op"`
	Count int      `json:"count"`
	Nodes []string `json:"nodes"` // the first few
}

// Inspect reads the structure of the model file at path — names, shapes,
// dtypes, ops — without its weights' values, and describes every model in
// it. Prefix and Gates in opts narrow and read the ConvLSTMs as Open and
// OpenConvLSTM would; Threads is not used.
//
// For an ONNX graph the op types are read from the structure alone; its
// initialisers are then decoded (external data included) to check every
// node at once (graph.Check) and, when all pass, to compile it, which tells
// whether it runs and reads its cells' gate orders.
func Inspect(path string, opts Options) (*Description, error) {
	return inspect(path, nil, opts)
}

// InspectBytes is Inspect over a file held in memory.
func InspectBytes(name string, data []byte, opts Options) (*Description, error) {
	if data == nil {
		data = []byte{}
	}
	return inspect(name, data, opts)
}

func inspect(name string, data []byte, opts Options) (*Description, error) {
	format, err := detect(name, data)
	if err != nil {
		return nil, err
	}
	if opts.Gates != "" {
		if _, err := convlstm.ParseGateOrder(opts.Gates); err != nil {
			return nil, err
		}
	}
	if format == loader.FormatONNX {
		return inspectGraph(name, data, opts)
	}
	var ck *loader.Checkpoint
	if data == nil {
		ck, err = loader.InspectCheckpoint(name)
	} else {
		ck, err = loader.InspectCheckpointBytes(name, data)
	}
	if err != nil {
		return nil, err
	}
	d := &Description{File: name, Format: ck.Format, Metadata: ck.Metadata, Ignored: ck.Ignored}
	d.count(ck.Names, ck.Tensors)
	if ck.Format == loader.FormatNPY {
		t := ck.Tensors[loader.ArrayName]
		d.Problem = fmt.Sprintf("a NumPy array (%s %s), not a model: an array is an input", t.DType, tensor.ShapeString(t.Shape))
		return d, nil
	}
	copts := convlstm.Options{Prefix: opts.Prefix, Gates: opts.Gates, ShapesOnly: true}
	found := convlstm.FindAll(ck, copts)
	if len(found) == 0 {
		_, err := convlstm.FromCheckpoint(ck, copts)
		d.Problem = err.Error()
	}
	used := map[string]bool{}
	for _, f := range found {
		mi := ModelInfo{Kind: KindConvLSTM, Name: f.Prefix, Use: "run"}
		if len(found) > 1 || opts.Prefix != "" {
			mi.Use = "run --prefix " + quoteArg(f.Prefix)
		}
		if f.Err != nil {
			mi.Problem = f.Err.Error()
		} else {
			mi.Runnable = true
			from := "default"
			switch {
			case opts.Gates != "":
				from = "option"
			case ck.Metadata[convlstm.MetaGates] != "":
				from = "metadata"
			}
			mi.describeConvLSTM(f.Model, from)
			for _, k := range f.Model.Source.Keys {
				used[k] = true
			}
		}
		d.Models = append(d.Models, mi)
	}
	d.Skipped = append(d.Skipped, ck.Skipped...)
	for _, n := range ck.Names {
		if !used[n] {
			t := ck.Tensors[n]
			d.Skipped = append(d.Skipped, fmt.Sprintf("%s %s %s (tensor)", n, t.DType, tensor.ShapeString(t.Shape)))
		}
	}
	return d, nil
}

// count fills the tensor statistics.
func (d *Description) count(names []string, ts map[string]*tensor.Tensor) {
	d.Tensors = len(names)
	seen := map[string]bool{}
	for _, n := range names {
		t := ts[n]
		d.Values += int64(t.NumElements())
		if dt := string(t.DType); !seen[dt] {
			seen[dt] = true
			d.DTypes = append(d.DTypes, dt)
		}
	}
}

func (mi *ModelInfo) describeConvLSTM(m *convlstm.Model, gatesFrom string) {
	info := &ConvLSTMInfo{Prefix: m.Source.Prefix, Kind: m.Source.Kind, Gates: string(m.Gates), GatesFrom: gatesFrom,
		Params: m.Params(), DTypes: m.Source.DTypes, Keys: m.Source.Keys}
	for _, l := range m.Layers {
		info.Layers = append(info.Layers, LayerInfo{l.LayerConfig, l.Params()})
	}
	mi.ConvLSTM = info
	mi.Inputs, mi.Outputs = nativeIO(m.Config())
}

// inspectGraph describes an ONNX file: the graph, then the ConvLSTMs among
// its initialisers.
func inspectGraph(name string, data []byte, opts Options) (*Description, error) {
	var om *loader.ONNXModel
	var err error
	if data == nil {
		om, err = loader.InspectONNX(name)
	} else {
		om, err = loader.InspectONNXBytes(name, data)
	}
	if err != nil {
		return nil, err
	}
	d := &Description{File: name, Format: loader.FormatONNX, Metadata: onnxMetadata(om)}
	names, ts := initializers(om, false)
	d.count(names, ts)

	gi := &GraphInfo{IRVersion: om.Proto.GetIrVersion(), Opset: om.Opset, Producer: om.Producer, Ops: map[string]int{}}
	unsupported := map[string]*OpUse{}
	supported := graph.SupportedOps()
	var walk func(g *onnxpb.GraphProto, depth int)
	walk = func(g *onnxpb.GraphProto, depth int) {
		if depth > 64 {
			return
		}
		for _, n := range g.GetNode() {
			op := n.GetOpType()
			if dom := n.GetDomain(); dom != "" && dom != "ai.onnx" {
				op = dom + "." + op
			}
			gi.Ops[op]++
			gi.Nodes++
			if _, ok := slices.BinarySearch(supported, op); !ok {
				u := unsupported[op]
				if u == nil {
					u = &OpUse{Op: op}
					unsupported[op] = u
				}
				u.Count++
				if len(u.Nodes) < 3 {
					node := n.GetName()
					if node == "" && len(n.GetOutput()) > 0 {
						node = n.GetOutput()[0]
					}
					u.Nodes = append(u.Nodes, node)
				}
			}
			for _, a := range n.GetAttribute() {
				for _, sg := range append([]*onnxpb.GraphProto{a.GetG()}, a.GetGraphs()...) {
					if sg != nil {
						gi.Subgraphs++
						walk(sg, depth+1)
					}
				}
			}
		}
	}
	walk(om.Proto.GetGraph(), 0)
	for _, op := range sortedKeys(unsupported) {
		gi.Unsupported = append(gi.Unsupported, *unsupported[op])
	}

	gm := ModelInfo{Kind: KindGraph, Name: "graph", Use: "run", Graph: gi}
	isInit := map[string]bool{}
	for _, t := range om.Initializers {
		isInit[t.Name] = true
	}
	for _, vi := range om.Proto.GetGraph().GetInput() {
		if !isInit[vi.GetName()] {
			gm.Inputs = append(gm.Inputs, ioFromProto(vi))
		}
	}
	for _, vi := range om.Proto.GetGraph().GetOutput() {
		gm.Outputs = append(gm.Outputs, ioFromProto(vi))
	}
	// Checking the nodes and compiling need the initialisers' values (a
	// Conv's weights are checked and packed), so the graph is decoded here,
	// and only here.
	var g *graph.Graph
	if full, err := readONNX(name, data); err != nil {
		gm.Problem = err.Error()
	} else if errs := graph.Check(full); len(errs) > 0 {
		for _, e := range errs {
			p := Problem{Message: e.Error()}
			var ge *graph.Error
			if errors.As(e, &ge) {
				p.Node, p.Op, p.Attr, p.Unsupported = ge.Node, ge.Op, ge.Attr, ge.Kind == graph.Unsupported
			}
			gi.Problems = append(gi.Problems, p)
		}
		gm.Problem = fmt.Sprintf("%d problem(s), the first: %s", len(errs), errs[0])
		if len(gi.Unsupported) > 0 {
			var parts []string
			for _, u := range gi.Unsupported {
				parts = append(parts, fmt.Sprintf("%s (%d node(s), e.g. %q)", u.Op, u.Count, u.Nodes[0]))
			}
			gm.Problem = fmt.Sprintf("%d operator type(s) not supported: %s; %d problem(s) in all", len(parts), strings.Join(parts, ", "), len(errs))
		}
	} else if g, err = graph.Compile(full, graph.Options{Threads: 1}); err != nil {
		gm.Problem = err.Error()
	} else {
		gm.Runnable = true
		for _, c := range g.CellGates() {
			if gi.Cells == nil {
				gi.Cells = map[string]int{}
			}
			gi.Cells[c.Gates]++
		}
	}
	d.Models = append(d.Models, gm)

	// The ConvLSTMs among the initialisers: what `convert` extracts.
	fnames, fts := initializers(om, true)
	found := convlstm.FindAllTensors(name, fnames, fts, convlstm.Options{Prefix: opts.Prefix, Gates: opts.Gates, ShapesOnly: true})
	for _, f := range found {
		mi := ModelInfo{Kind: KindConvLSTM, Name: f.Prefix, Use: "convert --output OUT.safetensors, then run OUT.safetensors"}
		if len(found) > 1 || opts.Prefix != "" {
			mi.Use = "convert --prefix " + quoteArg(f.Prefix) + " --output OUT.safetensors, then run OUT.safetensors"
		}
		if f.Err != nil {
			mi.Problem = f.Err.Error()
			d.Models = append(d.Models, mi)
			continue
		}
		from := "option"
		if opts.Gates == "" {
			gates, err := graph.GateOrder(om, g, weightKeys(f.Model))
			if err != nil {
				mi.Problem = err.Error()
			} else {
				f.Model.Gates = convlstm.GateOrder(gates)
				from = "metadata"
				if g != nil && len(g.CellGates()) > 0 {
					from = "graph"
				}
			}
		}
		mi.Runnable = mi.Problem == ""
		mi.describeConvLSTM(f.Model, from)
		if !mi.Runnable {
			mi.ConvLSTM.Gates, mi.ConvLSTM.GatesFrom = "", "unknown"
		}
		d.Models = append(d.Models, mi)
	}
	return d, nil
}

// initializers lists an ONNX model's initialisers (floats only: those
// that can be weights).
func initializers(om *loader.ONNXModel, floatsOnly bool) ([]string, map[string]*tensor.Tensor) {
	var names []string
	ts := map[string]*tensor.Tensor{}
	for _, t := range om.Initializers {
		if !floatsOnly || t.IsFloat() {
			names = append(names, t.Name)
			ts[t.Name] = t.Tensor
		}
	}
	return names, ts
}

func weightKeys(m *convlstm.Model) []string {
	var ws []string
	for _, k := range m.Source.Keys {
		if strings.HasSuffix(k, ".weight") {
			ws = append(ws, k)
		}
	}
	return ws
}

// ioFromProto describes a graph input or output from its ValueInfoProto.
func ioFromProto(vi *onnxpb.ValueInfoProto) IO {
	dims, elem, ok := loader.ONNXDims(vi)
	if !ok {
		return IO{Name: vi.GetName(), DType: "non-tensor"}
	}
	if dims == nil && vi.GetType().GetTensorType().GetShape() != nil {
		dims = []string{} // a scalar, not an unknown rank
	}
	return ioFromGraph(graph.ValueInfo{Name: vi.GetName(), Type: elem, Dims: dims})
}

// quoteArg quotes a command-line argument when a shell would need it.
func quoteArg(s string) string {
	if s == "" {
		return `""`
	}
	if strings.ContainsAny(s, " \t\"'$`\\|&;<>()*?[]#~") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
