package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/convlstm-go/convlstm-go/model"
)

func init() {
	var weights, prefix, gates string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Describe every model in a file without running it",
		Long: `Describe a model file in one layout, whatever its format: the file (format,
tensors, metadata), then every model in it — each ConvLSTM among a weights
file's tensors (key prefix, gate order, per layer input and hidden channels,
kernel, bias and parameters), or an ONNX graph (inputs, outputs, ops, every
unsupported op and every other problem at once, recognised ConvLSTM cells)
and the ConvLSTMs its initialisers hold — with the command that runs it and,
if it cannot run, why. Then what was skipped and which pickle globals were
ignored.

Only the structure is read (as image.DecodeConfig is to Decode): no weight
values of a .pt, safetensors, .npz or .npy. An ONNX graph's initialisers are
decoded to check every node and compile it, which tells whether it runs.`,
		Example: "  convlstm-run inspect --weights model.pt\n  convlstm-run inspect --weights ckpt.pth --json\n  convlstm-run inspect --weights exported.onnx",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if weights == "" {
				return fmt.Errorf("inspect needs --weights FILE")
			}
			return runInspect(cmd.OutOrStdout(), weights, prefix, gates, asJSON)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&weights, "weights", "", "model file (.pt/.pth, safetensors, .npz, ONNX)")
	fl.StringVar(&prefix, "prefix", "", "describe only the ConvLSTM at this key prefix")
	fl.StringVar(&gates, "gates", "", "gate order to read the ConvLSTMs with (default: the file's metadata or graph, else ifog)")
	fl.BoolVar(&asJSON, "json", false, "print JSON (model.Description)")
	rootCmd.AddCommand(cmd)
}

func runInspect(out io.Writer, path, prefix, gates string, asJSON bool) error {
	d, err := model.Inspect(path, model.Options{Prefix: prefix, Gates: gates})
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	printDescription(out, d)
	return nil
}

// printDescription prints a model.Description: the file, then one section
// per model, the same for every format.
func printDescription(out io.Writer, d *model.Description) {
	fmt.Fprintf(out, "file:     %s\n", d.File)
	fmt.Fprintf(out, "format:   %s\n", d.Format)
	what := "tensors"
	if d.Format == "onnx" {
		what = "initialisers"
	}
	fmt.Fprintf(out, "tensors:  %d %s, %d values (%s)\n", d.Tensors, what, d.Values, strings.Join(d.DTypes, ", "))
	for i, k := range sortedKeys(d.Metadata) {
		label := "metadata:"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(out, "%-9s %s = %s\n", label, k, d.Metadata[k])
	}
	fmt.Fprintf(out, "models:   %d\n", len(d.Models))
	if d.Problem != "" {
		fmt.Fprintf(out, "problem:  %s\n", d.Problem)
	}
	for i, mi := range d.Models {
		fmt.Fprintln(out)
		printModel(out, i+1, mi)
	}
	if len(d.Skipped)+len(d.Ignored) > 0 {
		fmt.Fprintln(out)
	}
	printList(out, "skipped", d.Skipped)
	printList(out, "ignored", d.Ignored)
}

func printModel(out io.Writer, n int, mi model.ModelInfo) {
	switch mi.Kind {
	case model.KindGraph:
		g := mi.Graph
		producer := g.Producer
		if producer == "" {
			producer = "no producer"
		}
		fmt.Fprintf(out, "model %d:  ONNX graph (IR version %d, opset %d, %s)\n", n, g.IRVersion, g.Opset, producer)
	default:
		where := mi.Name
		if where == "" {
			where = "(top level, no prefix)"
		}
		kind := "ConvLSTM (cell_list)"
		if mi.ConvLSTM != nil && mi.ConvLSTM.Kind == "cell" {
			kind = "single ConvLSTMCell, run as a one-layer ConvLSTM"
		}
		fmt.Fprintf(out, "model %d:  %s at %s\n", n, kind, where)
	}
	fmt.Fprintf(out, "  use:      %s\n", mi.Use)
	if mi.Runnable {
		fmt.Fprintf(out, "  runs:     yes\n")
	} else {
		fmt.Fprintf(out, "  runs:     no: %s\n", mi.Problem)
	}
	if c := mi.ConvLSTM; c != nil {
		if c.Gates != "" {
			fmt.Fprintf(out, "  gates:    %s (the conv's output blocks; %s)\n", c.Gates, gatesFrom[c.GatesFrom])
		}
		fmt.Fprintf(out, "  dtype:    %s\n", strings.Join(c.DTypes, ", "))
		fmt.Fprintf(out, "  layers:   %d\n", len(c.Layers))
		fmt.Fprintf(out, "    %-5s %6s %6s %7s %5s %10s\n", "layer", "input", "hidden", "kernel", "bias", "params")
		for i, l := range c.Layers {
			fmt.Fprintf(out, "    %-5d %6d %6d %7s %5v %10d\n", i, l.InputDim, l.HiddenDim, fmt.Sprintf("%dx%d", l.KernelH, l.KernelW), l.HasBias, l.Params)
		}
		fmt.Fprintf(out, "  params:   %d\n", c.Params)
		in, o := mi.Inputs[0], mi.Outputs[0]
		fmt.Fprintf(out, "  input:    %s %s %s; optional initial state h_l, c_l (batch, hidden_l, height, width)\n", in.Name, in.DType, in.DimString())
		fmt.Fprintf(out, "  output:   %s %s %s; final h_l, c_l per layer; output_l with --all-layers\n", o.Name, o.DType, o.DimString())
		return
	}
	for _, in := range mi.Inputs {
		fmt.Fprintf(out, "  input:    %s\n", in)
	}
	for _, o := range mi.Outputs {
		fmt.Fprintf(out, "  output:   %s\n", o)
	}
	g := mi.Graph
	fmt.Fprintf(out, "  nodes:    %d (%d subgraphs)\n", g.Nodes, g.Subgraphs)
	ops := sortedKeys(g.Ops)
	parts := make([]string, len(ops))
	for i, k := range ops {
		parts[i] = fmt.Sprintf("%s×%d", k, g.Ops[k])
	}
	fmt.Fprintf(out, "  ops:      %s\n", strings.Join(parts, ", "))
	for _, u := range g.Unsupported {
		fmt.Fprintf(out, "  unsupported: %s ×%d (nodes %s)\n", u.Op, u.Count, strings.Join(quoteAll(u.Nodes), ", "))
	}
	// The problems beyond "this op type is not supported", which the
	// lines above already say for every node.
	unsupported := map[string]bool{}
	for _, u := range g.Unsupported {
		unsupported[u.Op] = true
	}
	shown := 0
	for _, p := range g.Problems {
		if unsupported[p.Op] && p.Attr == "" && p.Unsupported {
			continue
		}
		if shown == 20 {
			fmt.Fprintf(out, "  … more problems (--json lists all %d)\n", len(g.Problems))
			break
		}
		fmt.Fprintf(out, "  problem:  %s\n", p.Message)
		shown++
	}
	if len(g.Cells) > 0 {
		var cs []string
		for o, k := range g.Cells {
			cs = append(cs, fmt.Sprintf("%d with gate order %s", k, o))
		}
		sort.Strings(cs)
		fmt.Fprintf(out, "  cells:    %s (ConvLSTM cell updates recognised and fused)\n", strings.Join(cs, ", "))
	}
}

var gatesFrom = map[string]string{
	"option":   "as asked with --gates",
	"metadata": "recorded in the file's metadata; --gates to change",
	"graph":    "read from the graph's cell updates; --gates to change",
	"default":  "ConvLSTM_pytorch's, the default; --gates to change",
}

func quoteAll(ss []string) []string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return q
}

// printList prints a heading and up to 20 items.
func printList(out io.Writer, what string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(out, "%s:  %d\n", what, len(items))
	for i, s := range items {
		if i == 20 {
			fmt.Fprintf(out, "  … %d more (--json lists all)\n", len(items)-20)
			break
		}
		fmt.Fprintf(out, "  %s\n", s)
	}
}
