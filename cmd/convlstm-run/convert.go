package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/export"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/model"
)

type convertFlags struct {
	weights, output, gates, prefix string
	opset                          int
	opsetSet, initialState         bool
}

func init() {
	var f convertFlags
	cmd := &cobra.Command{
		Use:   "convert",
		Short: "Write a ConvLSTM's weights as an ONNX graph or a safetensors file",
		Long: `Convert the ConvLSTM in a weights file (any format run accepts, told apart by
content; also an ONNX graph torch.onnx.export wrote, whose gate order is read
from the graph) to:

  OUT.onnx         one ONNX graph for any batch, sequence length and image size:
                   input "input" (B,T,C,H,W) float32; outputs "output"
                   (B,T,hidden_last,H,W) and the final "h_l"/"c_l" of every layer.
                   The time loop is a Scan, so the file does not grow with T.
                   --initial-state adds inputs "h0_l"/"c0_l" (B,hidden_l,H,W).
  OUT.safetensors  the state_dict under PyTorch's names (cell_list.{l}.conv.weight
                   and .bias, float32), loadable with load_state_dict; the gate
                   order and architecture are stored in __metadata__, so run needs
                   no --gates flag.

The output is written to a temporary file and renamed into place: a failed
conversion leaves no partial file.`,
		Example: `  convlstm-run convert --weights model.pt --output model.onnx
  convlstm-run convert --weights ckpt.pth --prefix enc1 --gates fiog --output enc1.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.opsetSet = cmd.Flags().Changed("opset")
			return runConvert(cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.weights, "weights", "", "weights file (.pt/.pth, safetensors, torch-exported ONNX; detected from content)")
	fl.StringVar(&f.output, "output", "", "OUT.onnx or OUT.safetensors (format from the extension)")
	fl.StringVar(&f.gates, "gates", "", "gate order of the conv's output blocks, a permutation of ifog (default ifog, or the file's metadata)")
	fl.StringVar(&f.prefix, "prefix", "", "which ConvLSTM in the file: the key prefix before cell_list. or before .conv.weight")
	fl.IntVar(&f.opset, "opset", 17, "ONNX opset to write (11 to 17)")
	fl.BoolVar(&f.initialState, "initial-state", false, "ONNX: add h0_l/c0_l initial-state inputs (without them the state starts at zero)")
	rootCmd.AddCommand(cmd)
}

func runConvert(out io.Writer, f convertFlags) error {
	if f.weights == "" || f.output == "" {
		return fmt.Errorf("convert needs --weights FILE and --output OUT.onnx|OUT.safetensors")
	}
	ext := strings.ToLower(filepath.Ext(f.output))
	if ext != ".onnx" && ext != ".safetensors" {
		return fmt.Errorf("--output %s: the extension must be .onnx or .safetensors (it chooses the format)", f.output)
	}
	if ext == ".safetensors" {
		var bad []string
		if f.opsetSet {
			bad = append(bad, fmt.Sprintf("--opset %d", f.opset))
		}
		if f.initialState {
			bad = append(bad, "--initial-state")
		}
		if len(bad) > 0 {
			verb := "applies"
			if len(bad) > 1 {
				verb = "apply"
			}
			return fmt.Errorf("--output %s: %s %s to ONNX output only (a safetensors file holds weights, not a graph)", f.output, strings.Join(bad, " and "), verb)
		}
	}
	m, err := model.OpenConvLSTM(f.weights, model.Options{Prefix: f.prefix, Gates: f.gates})
	if err != nil {
		return err
	}
	var write func(w io.Writer) error
	var what string
	if ext == ".onnx" {
		write = func(w io.Writer) error {
			return export.ONNX(m, w, export.ONNXOptions{Opset: int64(f.opset), InitialState: f.initialState, ProducerVersion: "convert"})
		}
		what = fmt.Sprintf("ONNX opset %d, dynamic batch/time/height/width", f.opset)
		if f.initialState {
			what += ", initial-state inputs"
		}
	} else {
		write = func(w io.Writer) error { return export.Safetensors(m, w, export.SafetensorsOptions{}) }
		what = "safetensors, float32"
	}
	if err := loader.WriteAtomic(f.output, write); err != nil {
		return fmt.Errorf("writing %s: %w", f.output, err)
	}
	var size int64
	if st, err := os.Stat(f.output); err == nil {
		size = st.Size()
	}
	fmt.Fprintf(out, "model    %s: %s\n", f.weights, describeModel(m))
	fmt.Fprintf(out, "wrote    %s (%s; %d bytes)\n", f.output, what, size)
	return nil
}

func describeModel(m *convlstm.Model) string {
	var hid []string
	for _, l := range m.Layers {
		hid = append(hid, fmt.Sprintf("%d→%d k%dx%d", l.InputDim, l.HiddenDim, l.KernelH, l.KernelW))
	}
	where := ""
	if m.Source.Prefix != "" {
		where = fmt.Sprintf(" at %q", m.Source.Prefix)
	}
	return fmt.Sprintf("ConvLSTM%s, %d layer(s) [%s], gates %s", where, len(m.Layers), strings.Join(hid, ", "), m.Gates)
}
