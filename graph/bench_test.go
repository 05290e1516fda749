//go:build unix

package graph

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/convlstm-go/convlstm-go/loader"
	"github.com/convlstm-go/convlstm-go/tensor"
)

// BenchmarkFile times Run on a model and input given by the environment:
//
//	GRAPH_BENCH_ONNX=m.onnx GRAPH_BENCH_INPUT=x.npy GRAPH_BENCH_THREADS=1 \
//	    go test ./graph -run '^$' -bench File
//
// (scripts/onnx_parity.py and the report compare it with ONNX Runtime on
// the same file.)
func BenchmarkFile(b *testing.B) {
	path, in := os.Getenv("GRAPH_BENCH_ONNX"), os.Getenv("GRAPH_BENCH_INPUT")
	if path == "" || in == "" {
		b.Skip("set GRAPH_BENCH_ONNX and GRAPH_BENCH_INPUT")
	}
	threads := 1
	if s := os.Getenv("GRAPH_BENCH_THREADS"); s == "2" {
		threads = 2
	}
	g, err := Load(path, Options{Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	x, err := loader.ReadNPY(in)
	if err != nil {
		b.Fatal(err)
	}
	feed := map[string]*tensor.Tensor{g.Inputs()[0].Name: x}
	if _, err := g.Run(feed); err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		if _, err := g.Run(feed); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// CPU time of the process per run: steadier than wall time on a
	// shared machine, and what scripts/onnx_ort_run.js reports for ORT.
	if c := cpuTime() - cpu0; c > 0 {
		b.ReportMetric(c.Seconds()*1000/float64(b.N), "cpu-ms/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
