package graph

import (
	"fmt"
	"sort"
	"strings"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// ConvLSTM recovers the ConvLSTM whose weights an ONNX model's initialisers
// hold: torch.onnx.export keeps the state_dict names (e.g.
// "m.cell_list.0.conv.weight", or "enc1.conv.weight" for a cell) and
// package export writes "cell_list.{l}.conv.weight". opts.Prefix chooses
// among several as convlstm.FromTensors does. The gate order is
// opts.Gates when given, else read from the graph (see GateOrder). g is
// the graph compiled from m, or nil.
//
// The result runs on package runtime like any ConvLSTM; it is the cells
// only, whatever else the graph computes around them.
func ConvLSTM(m *loader.ONNXModel, g *Graph, opts convlstm.Options) (*convlstm.Model, error) {
	names, ts := floatInitializers(m)
	gates := opts.Gates
	opts.Gates = "" // read the weights first, then their gate order
	cm, err := convlstm.FromTensors(m.File, names, ts, opts)
	if err != nil {
		return nil, err
	}
	if gates == "" {
		if gates, err = GateOrder(m, g, weightKeys(cm)); err != nil {
			return nil, err
		}
	}
	if cm.Gates, err = convlstm.ParseGateOrder(gates); err != nil {
		return nil, err
	}
	cm.Source.Format = loader.FormatONNX
	return cm, nil
}

// GateOrder tells the gate order of the ConvLSTM whose layers' conv
// weights are the initialisers named by weights. It is read from the
// graph's structure: the cell updates of g (see CellGates) that read those
// weights, or, when none is tied to its Conv, every cell update of g; they
// must agree. Without cells to read (g nil, or none recognised) it is the
// model's own record under convlstm.MetaGates (package export writes it),
// else an error.
func GateOrder(m *loader.ONNXModel, g *Graph, weights []string) (string, error) {
	if g != nil {
		cells := g.CellGates()
		want := map[string]bool{}
		for _, w := range weights {
			want[w] = true
		}
		var mine []CellInfo
		for _, c := range cells {
			if want[c.Weight] {
				mine = append(mine, c)
			}
		}
		if len(mine) == 0 {
			mine = cells
		}
		if len(mine) > 0 {
			seen := map[string][]string{}
			for _, c := range mine {
				seen[c.Gates] = append(seen[c.Gates], c.Node)
			}
			if len(seen) == 1 {
				return mine[0].Gates, nil
			}
			var parts []string
			for o, nodes := range seen {
				parts = append(parts, fmt.Sprintf("%s (%d cells, e.g. node %q)", o, len(nodes), nodes[0]))
			}
			sort.Strings(parts)
			return "", fmt.Errorf("graph: %s: the cell updates reading %s use different gate orders: %s; choose one with --gates", m.File, strings.Join(weights, ", "), strings.Join(parts, "; "))
		}
	}
	for _, kv := range m.Proto.GetMetadataProps() {
		if kv.GetKey() == convlstm.MetaGates {
			return kv.GetValue(), nil
		}
	}
	if g == nil {
		return "", fmt.Errorf("graph: %s: the gate order of %s is unknown: the graph could not be compiled to read it from its cell updates, and the model records no %s; give it with --gates", m.File, strings.Join(weights, ", "), convlstm.MetaGates)
	}
	return "", fmt.Errorf("graph: %s: no ConvLSTM cell update (Conv → Split → Sigmoid/Tanh → Mul/Add) found in the graph to read the gate order of %s from, and the model records no %s; give it with --gates", m.File, strings.Join(weights, ", "), convlstm.MetaGates)
}

// floatInitializers lists the initialisers that can be weights, in file
// order (shape-only ones, as loader.InspectONNX gives, included).
func floatInitializers(m *loader.ONNXModel) ([]string, map[string]*tensor.Tensor) {
	var names []string
	ts := map[string]*tensor.Tensor{}
	for _, t := range m.Initializers {
		if t.IsFloat() {
			names = append(names, t.Name)
			ts[t.Name] = t.Tensor
		}
	}
	return names, ts
}

// weightKeys lists the conv weight of each layer (not the biases).
func weightKeys(cm *convlstm.Model) []string {
	var ws []string
	for _, k := range cm.Source.Keys {
		if strings.HasSuffix(k, ".weight") {
			ws = append(ws, k)
		}
	}
	return ws
}
