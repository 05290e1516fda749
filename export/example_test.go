package export_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/export"
	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Exporting a model as one ONNX graph and running it for two sequence
// lengths and image sizes.
func ExampleONNX() {
	m, err := convlstm.Load("../fixtures/safetensors/model_f32.safetensors", convlstm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if err := export.ONNX(m, &buf, export.ONNXOptions{}); err != nil {
		log.Fatal(err)
	}
	om, err := loader.ParseONNX("model.onnx", buf.Bytes(), "")
	if err != nil {
		log.Fatal(err)
	}
	g, err := graph.Compile(om, graph.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("gates", m.Gates)
	for _, shape := range [][]int{{1, 1, 3, 5, 5}, {2, 7, 3, 8, 3}} {
		x := &tensor.Tensor{Shape: shape, Data: make([]float32, shape[0]*shape[1]*shape[2]*shape[3]*shape[4])}
		out, err := g.Run(map[string]*tensor.Tensor{"input": x})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(shape, "->", out["output"].Shape, out["h_1"].Shape)
	}
	// Output:
	// gates ifgo
	// [1 1 3 5 5] -> [1 1 2 5 5] [1 2 5 5]
	// [2 7 3 8 3] -> [2 7 2 8 3] [2 2 8 3]
}
