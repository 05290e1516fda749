package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/loader"
)

func init() {
	var weights, prefix, gates string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Describe the ConvLSTM in a weights file without running it",
		Long: `Describe a weights file: its format, where the ConvLSTM was found (key prefix,
skipped entries, ignored pickle globals) and, per layer, input and hidden
channels, kernel, bias and parameter count. For .pt files only the structure
is read, not the weight data. ONNX files list inputs, outputs, ops and opset.`,
		Example: "  convlstm-run inspect --weights model.pt\n  convlstm-run inspect --weights ckpt.pth --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if weights == "" {
				return fmt.Errorf("inspect needs --weights FILE")
			}
			return runInspect(cmd.OutOrStdout(), weights, prefix, gates, asJSON)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&weights, "weights", "", "weights file (.pt/.pth, safetensors, ONNX)")
	fl.StringVar(&prefix, "prefix", "", "which ConvLSTM in the file, if there are several")
	fl.StringVar(&gates, "gates", "", "gate order to report (default ifog, or the file's metadata)")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	rootCmd.AddCommand(cmd)
}

// inspectReport is inspect's JSON form.
type inspectReport struct {
	File     string            `json:"file"`
	Format   string            `json:"format"`
	Prefix   string            `json:"prefix"`
	Kind     string            `json:"kind"`
	Gates    string            `json:"gates"`
	Layers   []inspectLayer    `json:"layers"`
	Params   int               `json:"params"`
	DTypes   []string          `json:"dtypes"`
	Keys     []string          `json:"keys"`
	Skipped  []string          `json:"skipped"`
	Ignored  []string          `json:"ignored"`
	Others   []string          `json:"other_candidates"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type inspectLayer struct {
	convlstm.LayerConfig
	Params int `json:"params"`
}

func runInspect(out io.Writer, path, prefix, gates string, asJSON bool) error {
	format, err := loader.DetectFile(path)
	if err != nil {
		return err
	}
	if format == loader.FormatONNX {
		return inspectONNX(out, path, asJSON)
	}
	var ck *loader.Checkpoint
	if format == loader.FormatPTZip || format == loader.FormatPTLegacy {
		ck, err = loader.InspectPT(path)
	} else {
		ck, err = convlstm.LoadCheckpoint(path)
	}
	if err != nil {
		return err
	}
	m, err := convlstm.FromCheckpoint(ck, convlstm.Options{Prefix: prefix, Gates: gates, ShapesOnly: true})
	if err != nil {
		return err
	}
	rep := inspectReport{File: path, Format: ck.Format, Prefix: m.Source.Prefix, Kind: m.Source.Kind, Gates: string(m.Gates),
		Params: m.Params(), DTypes: m.Source.DTypes, Keys: m.Source.Keys, Skipped: m.Source.Skipped, Ignored: m.Source.Ignored,
		Others: m.Source.Others, Metadata: ck.Metadata}
	for _, l := range m.Layers {
		rep.Layers = append(rep.Layers, inspectLayer{l.LayerConfig, l.Params()})
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(out, "file:     %s\nformat:   %s\n", rep.File, rep.Format)
	where := rep.Prefix
	if where == "" {
		where = "(top level, no prefix)"
	}
	kind := "ConvLSTM (cell_list)"
	if rep.Kind == "cell" {
		kind = "single ConvLSTMCell, run as a one-layer ConvLSTM"
	}
	fmt.Fprintf(out, "found:    %s at %s\n", kind, where)
	if len(rep.Others) > 0 {
		fmt.Fprintf(out, "also:     %s (choose with --prefix)\n", strings.Join(rep.Others, ", "))
	}
	fmt.Fprintf(out, "gates:    %s (the conv's output blocks; --gates to change)\n", rep.Gates)
	fmt.Fprintf(out, "dtype:    %s\n", strings.Join(rep.DTypes, ", "))
	fmt.Fprintf(out, "layers:   %d\n", len(rep.Layers))
	fmt.Fprintf(out, "  %-5s %6s %6s %7s %5s %10s\n", "layer", "input", "hidden", "kernel", "bias", "params")
	for i, l := range rep.Layers {
		fmt.Fprintf(out, "  %-5d %6d %6d %7s %5v %10d\n", i, l.InputDim, l.HiddenDim, fmt.Sprintf("%dx%d", l.KernelH, l.KernelW), l.HasBias, l.Params)
	}
	fmt.Fprintf(out, "params:   %d\n", rep.Params)
	printList(out, "skipped", rep.Skipped)
	printList(out, "ignored", rep.Ignored)
	return nil
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
