package graph_test

import (
	"fmt"
	"log"

	"github.com/convlstm-go/convlstm-go/graph"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Running a torch-exported ConvLSTM graph whose batch, height and width are
// dynamic on an input of a size other than the one used at export.
func Example() {
	g, err := graph.Load("../fixtures/onnx/dynamic_op13.onnx", graph.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	in := g.Inputs()[0]
	fmt.Println("input", in.Name, in.Dims)
	x := &tensor.Tensor{Shape: []int{2, 3, 2, 4, 7}, Data: make([]float32, 2*3*2*4*7)}
	out, err := g.Run(map[string]*tensor.Tensor{in.Name: x})
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range g.Outputs() {
		fmt.Println(o.Name, out[o.Name].Shape)
	}
	// Output:
	// input input [batch 3 2 height width]
	// output [2 3 2 4 7]
	// h_0 [2 3 4 7]
	// c_0 [2 3 4 7]
	// h_1 [2 2 4 7]
	// c_1 [2 2 4 7]
}
