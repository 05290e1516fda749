//go:build ignore

// moving_mnist_npz writes Moving MNIST sequences made by the Go generator
// (package movingmnist) to an .npz, for scripts/moving_mnist_check.py:
// "sequences" (N, 20, 64, 64) float32 raw pixels 0..255, and "seed" (1,) int64.
//
//	go run scripts/moving_mnist_npz.go -n 64 -seed 1 -o /tmp/mm.npz
package main

import (
	"flag"
	"fmt"
	"log"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/movingmnist"
	"github.com/convlstm-go/convlstm-go/tensor"
)

func main() {
	n := flag.Int("n", 64, "sequences")
	seed := flag.Uint64("seed", 1, "seed")
	out := flag.String("o", "moving-mnist.npz", "output .npz")
	flag.Parse()
	log.SetFlags(0)
	x, err := movingmnist.Generate(*n, *seed)
	if err != nil {
		log.Fatal(err)
	}
	ts := map[string]*tensor.Tensor{"sequences": x, "seed": tensor.FromInts(tensor.Int64, []int64{int64(*seed)}, 1)}
	if err := loader.WriteNPZ(*out, []string{"sequences", "seed"}, ts); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s: %d sequences, seed %d\n", *out, *n, *seed)
}
