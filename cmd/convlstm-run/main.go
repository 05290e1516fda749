// Command convlstm-run runs PyTorch ConvLSTM models and ONNX graphs without
// Python.
//
//	convlstm-run run       [--weights FILE] [--input X.npy | NAME=X.npy ... | X.npz | DIR/ | X.gif] [--output OUT.npz | OUT.gif | DIR/] ...
//	convlstm-run demo      [--sequences N] [--seed S] [--output demo.gif] [--threads N]
//	convlstm-run inspect   --weights FILE [--prefix P] [--json]
//	convlstm-run bench     [--weights FILE] --shape B,T,C,H,W [--input NAME=SHAPE ...] [--threads N] [--runs 5] [--json]
//	convlstm-run convert   --weights FILE --output OUT.onnx|OUT.safetensors
//
// Every command opens its file through package model: the format is told
// from the content, and a flag that does not apply to it is an error. With
// no --weights and --input, run uses a small example model and input
// embedded in the binary.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

var rootCmd = &cobra.Command{
	Use:           "convlstm-run",
	Short:         "Run PyTorch ConvLSTM models without Python",
	Long:          "convlstm-run loads ConvLSTM weights saved by PyTorch (.pt/.pth state_dicts, checkpoints, whole pickled modules), safetensors or .npz state_dicts, or ONNX graphs, and replays PyTorch's forward pass exactly, in float32.",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "convlstm-run:", err)
		os.Exit(1)
	}
}
