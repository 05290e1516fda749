package main

import (
	"github.com/convlstm-go/convlstm-go/tensor"

	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/loader/onnxpb"
)

// isONNX reports whether a file's first bytes look like an ONNX model
// (see loader.IsONNX).
func isONNX(head []byte) bool { return loader.IsONNX(head) }

// runONNX runs an ONNX graph on the .npy input (bound to the graph's first
// input) and writes every graph output, under its graph name, to the .npz
// at output (atomically; "" writes nothing).
func runONNX(out io.Writer, weights, input, output string, threads int) error {
	g, err := graph.Load(weights, graph.Options{Threads: threads})
	if err != nil {
		return err
	}
	ins := g.Inputs()
	if len(ins) == 0 {
		return fmt.Errorf("%s: the graph has no inputs to feed --input to", weights)
	}
	if len(ins) > 1 {
		var names []string
		for _, in := range ins[1:] {
			names = append(names, fmt.Sprintf("%s (%s)", in.Name, strings.Join(in.Dims, "×")))
		}
		return fmt.Errorf("%s: the graph takes %d inputs; --input feeds only the first (%s), the others cannot be given: %s", weights, len(ins), ins[0].Name, strings.Join(names, ", "))
	}
	if input == "" {
		return fmt.Errorf("running an ONNX graph needs --input X.npy for its input %q (%s)", ins[0].Name, strings.Join(ins[0].Dims, "×"))
	}
	x, err := readInput(input)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := g.Run(map[string]*tensor.Tensor{ins[0].Name: x})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	var keys []string
	for _, o := range g.Outputs() {
		keys = append(keys, o.Name)
	}
	fmt.Fprintf(out, "graph    %s (ONNX opset %d, %s)\n", weights, g.Opset, nonEmpty(g.Producer, "unknown producer"))
	fmt.Fprintf(out, "input    %s %s from %s\n", ins[0].Name, tensor.ShapeString(x.Shape), input)
	for _, k := range keys {
		t := res[k]
		fmt.Fprintf(out, "output   %-10s %s\n", k, tensor.ShapeString(t.Shape))
	}
	fmt.Fprintf(out, "time     %.3f ms\n", float64(elapsed.Microseconds())/1000)
	if output != "" {
		if err := loader.WriteNPZ(output, keys, res); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote    %s\n", output)
	}
	return nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type onnxInspect struct {
	File        string            `json:"file"`
	Format      string            `json:"format"`
	IRVersion   int64             `json:"ir_version"`
	Opset       int64             `json:"opset"`
	Producer    string            `json:"producer"`
	Inputs      []graph.ValueInfo `json:"inputs"`
	Outputs     []graph.ValueInfo `json:"outputs"`
	Ops         map[string]int    `json:"ops"`       // main graph and every subgraph
	Nodes       int               `json:"nodes"`     // all nodes, subgraphs included
	Subgraphs   int               `json:"subgraphs"` // Scan/Loop/If bodies
	Initializer int               `json:"initializers"`
	Params      int               `json:"params"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Runnable    bool              `json:"runnable"`
	Problem     string            `json:"problem,omitempty"`
	// Cells counts the ConvLSTM cell updates recognised (and fused), by gate
	// order read from the graph's structure, e.g. {"ifog": 6}.
	Cells map[string]int `json:"cells,omitempty"`
}

// inspectONNX describes an ONNX model: inputs and outputs (dynamic dims by
// name), op counts, opset, producer, and whether graph/ can run it.
func inspectONNX(out io.Writer, path string, asJSON bool) error {
	m, err := loader.LoadONNX(path)
	if err != nil {
		return err
	}
	info := onnxInspect{File: path, Format: loader.FormatONNX, IRVersion: m.Proto.GetIrVersion(), Opset: m.Opset, Producer: m.Producer, Ops: map[string]int{}, Initializer: len(m.Initializers)}
	for _, t := range m.Initializers {
		info.Params += t.NumElements()
	}
	for _, kv := range m.Proto.MetadataProps {
		if info.Metadata == nil {
			info.Metadata = map[string]string{}
		}
		info.Metadata[kv.GetKey()] = kv.GetValue()
	}
	var count func(g *onnxpb.GraphProto, depth int)
	count = func(g *onnxpb.GraphProto, depth int) {
		if depth > 64 {
			return
		}
		for _, n := range g.GetNode() {
			info.Ops[n.GetOpType()]++
			info.Nodes++
			for _, a := range n.GetAttribute() {
				for _, sg := range append([]*onnxpb.GraphProto{a.GetG()}, a.GetGraphs()...) {
					if sg != nil {
						info.Subgraphs++
						count(sg, depth+1)
					}
				}
			}
		}
	}
	count(m.Proto.GetGraph(), 0)
	g, err := graph.Compile(m, graph.Options{Threads: 1})
	if err != nil {
		info.Problem = err.Error()
		// Describe the inputs and outputs even when the graph cannot run.
		init := map[string]bool{}
		for _, t := range m.Initializers {
			init[t.Name] = true
		}
		for _, vi := range m.Proto.Graph.Input {
			if !init[vi.GetName()] {
				info.Inputs = append(info.Inputs, describe(vi))
			}
		}
		for _, vi := range m.Proto.Graph.Output {
			info.Outputs = append(info.Outputs, describe(vi))
		}
	} else {
		info.Runnable = true
		info.Inputs, info.Outputs = g.Inputs(), g.Outputs()
		for _, c := range g.CellGates() {
			if info.Cells == nil {
				info.Cells = map[string]int{}
			}
			info.Cells[c.Gates]++
		}
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	fmt.Fprintf(out, "file       %s\n", path)
	fmt.Fprintf(out, "format     ONNX (IR version %d, opset %d)\n", info.IRVersion, info.Opset)
	fmt.Fprintf(out, "producer   %s\n", nonEmpty(info.Producer, "(none)"))
	for _, in := range info.Inputs {
		fmt.Fprintf(out, "input      %-10s %s (%s)\n", in.Name, dimsString(in.Dims), in.Type)
	}
	for _, o := range info.Outputs {
		fmt.Fprintf(out, "output     %-10s %s (%s)\n", o.Name, dimsString(o.Dims), o.Type)
	}
	ops := make([]string, 0, len(info.Ops))
	for k := range info.Ops {
		ops = append(ops, k)
	}
	sort.Strings(ops)
	parts := make([]string, len(ops))
	for i, k := range ops {
		parts[i] = fmt.Sprintf("%s×%d", k, info.Ops[k])
	}
	fmt.Fprintf(out, "nodes      %d (%d subgraphs)\n", info.Nodes, info.Subgraphs)
	fmt.Fprintf(out, "ops        %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(out, "weights    %d initializers, %d values\n", info.Initializer, info.Params)
	if len(info.Metadata) > 0 {
		keys := make([]string, 0, len(info.Metadata))
		for k := range info.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(out, "metadata   %s = %s\n", k, info.Metadata[k])
		}
	}
	if len(info.Cells) > 0 {
		var parts []string
		for o, n := range info.Cells {
			parts = append(parts, fmt.Sprintf("%d with gate order %s", n, o))
		}
		sort.Strings(parts)
		fmt.Fprintf(out, "cells      %s (ConvLSTM cell updates recognised in the graph)\n", strings.Join(parts, ", "))
	}
	if info.Runnable {
		fmt.Fprintf(out, "runnable   yes\n")
	} else {
		fmt.Fprintf(out, "runnable   no: %s\n", info.Problem)
	}
	return nil
}

func describe(vi *onnxpb.ValueInfoProto) graph.ValueInfo {
	dims, elem, ok := loader.ONNXDims(vi)
	if !ok {
		elem = "non-tensor"
	}
	return graph.ValueInfo{Name: vi.GetName(), Type: elem, Dims: dims}
}

func dimsString(d []string) string {
	if d == nil {
		return "(rank unknown)"
	}
	return "(" + strings.Join(d, ", ") + ")"
}
