package model_test

import (
	"fmt"
	"log"

	"github.com/convlstm-go/convlstm-go/model"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Opening a model file of any format and running it: the same calls for a
// PyTorch checkpoint and an ONNX graph.
func ExampleOpen() {
	for _, path := range []string{"../fixtures/forward/two-layer-mixed-kernels/weights.pt", "../fixtures/onnx/dynamic_op13.onnx"} {
		m, err := model.Open(path, model.Options{Threads: 1})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.Format, m.Kind, "takes", m.Inputs()[0])
		in := m.Inputs()[0]
		shape := []int{2, 3, in.Dims[2], 4, 7} // batch 2, 3 steps, 4×7 images
		out, err := m.Run(map[string]*tensor.Tensor{"input": tensor.New(shape...)}, model.RunOptions{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("  output", out["output"].Shape, "h_1", out["h_1"].Shape)
		m.Close()
	}
	// Output:
	// pytorch-zip convlstm takes input float32 (batch, time, 3, height, width)
	//   output [2 3 4 4 7] h_1 [2 4 4 7]
	// onnx graph takes input float32 (batch, 3, 2, height, width)
	//   output [2 3 2 4 7] h_1 [2 2 4 7]
}

// Inspecting a file with several ConvLSTMs: each is described, with the
// command that runs it, and no weight values are read.
func ExampleInspect() {
	d, err := model.Inspect("../fixtures/real/moving-mnist-encdec.pt", model.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Format, len(d.Models), "models")
	for _, mi := range d.Models {
		c := mi.ConvLSTM
		l := c.Layers[0]
		fmt.Printf("  %-4s %s: %d -> %d, %dx%d, gates %s; %s\n", mi.Name, c.Kind, l.InputDim, l.HiddenDim, l.KernelH, l.KernelW, c.Gates, mi.Use)
	}
	// Output:
	// pytorch-zip 4 models
	//   enc1 cell: 32 -> 32, 5x5, gates ifog; run --prefix enc1
	//   enc2 cell: 32 -> 32, 5x5, gates ifog; run --prefix enc2
	//   dec1 cell: 32 -> 32, 5x5, gates ifog; run --prefix dec1
	//   dec2 cell: 32 -> 32, 5x5, gates ifog; run --prefix dec2
}
