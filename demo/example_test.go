package demo_test

import (
	"log"
	"os"

	"github.com/convlstm-go/convlstm-go/demo"
)

// Score the naive forecast on 8 sequences and draw demo.gif; a real model
// is any func(x *tensor.Tensor) (*tensor.Tensor, error) on raw pixels.
func ExampleRun() {
	res, err := demo.Run(demo.CopyLast, demo.Options{Sequences: 8, Seed: 1, GIF: "demo.gif"})
	if err != nil {
		log.Fatal(err)
	}
	res.WriteReport(os.Stdout)
}
