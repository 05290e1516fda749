package frames_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/convlstm-go/convlstm-go/frames"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// Frames in and out: write a model's output as PNGs, read them back for a
// model on raw pixels, and lay them out for an ONNX graph whose input is
// (batch, 10, 64, 64).
func Example() {
	dir, err := os.MkdirTemp("", "frames-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	y := tensor.New(1, 10, 1, 64, 64) // (B, T, C, H, W), values 0..1
	y.Data[0] = 1
	if err := frames.Write(filepath.Join(dir, "out")+"/", y, frames.WriteOptions{}); err != nil {
		log.Fatal(err)
	}
	x, sources, err := frames.Read(filepath.Join(dir, "out"), frames.ReadOptions{PixelMax: 255})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tensor.ShapeString(x.Shape), x.Data[0], len(sources))

	in, layout, err := frames.ForGraph(x, []int{-1, 10, 64, 64})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(layout, tensor.ShapeString(in.Shape))
	// Output:
	// (1, 10, 1, 64, 64) 255 1
	// (B, T, H, W) (1, 10, 64, 64)
}
