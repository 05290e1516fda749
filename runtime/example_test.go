package runtime_test

import (
	"fmt"
	"log"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/runtime"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Load a PyTorch checkpoint and run a whole sequence.
func ExampleRunner_Forward() {
	m, err := convlstm.Load("../fixtures/forward/two-layer-mixed-kernels/weights.pt", convlstm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	r, err := runtime.New(m, runtime.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	x, err := loader.ReadNPY("../fixtures/forward/two-layer-mixed-kernels/input.npy")
	if err != nil {
		log.Fatal(err)
	}
	res, err := r.Forward(x, runtime.ForwardOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for i, l := range m.Layers {
		fmt.Printf("layer %d: %d -> %d channels, kernel %dx%d\n", i, l.InputDim, l.HiddenDim, l.KernelH, l.KernelW)
	}
	fmt.Println("input", x.Shape, "output", res.Output.Shape, "final h of the last layer", res.Final[len(res.Final)-1].H.Shape)
	// Output:
	// layer 0: 3 -> 5 channels, kernel 5x5
	// layer 1: 5 -> 4 channels, kernel 3x3
	// input [2 3 3 5 9] output [2 3 4 5 9] final h of the last layer [2 4 5 9]
}

// Feed frames one at a time, carrying the state between calls.
func ExampleStream_Step() {
	m, err := convlstm.Load("../fixtures/forward/one-layer-3x3/weights.pt", convlstm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	r, err := runtime.New(m, runtime.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	s, err := r.NewStream(1, 6, 6, nil) // batch 1, 6×6 frames, zero initial state
	if err != nil {
		log.Fatal(err)
	}
	frame := &tensor.Tensor{Shape: []int{1, m.InputDim(), 6, 6}, Data: make([]float32, m.InputDim()*36)}
	for step := 0; step < 3; step++ {
		h, err := s.Step(frame)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("step", step, "h", h.Shape)
	}
	// Output:
	// step 0 h [1 4 6 6]
	// step 1 h [1 4 6 6]
	// step 2 h [1 4 6 6]
}
