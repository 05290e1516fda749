//go:build unix

package graph

import (
	"os"
	"runtime"
	"sort"
	"syscall"
	"testing"
	"time"
	"unsafe"

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
	done := profileOps(b)
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		if _, err := g.Run(feed); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	done()
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

// profileOps, with GRAPH_BENCH_PROFILE set, times every node of the runs
// and prints the time per op (fused nodes under their fused name), the
// largest first. Nodes inside Loop/Scan bodies count twice: under their
// own op and inside the Loop's.
func profileOps(b *testing.B) func() {
	if os.Getenv("GRAPH_BENCH_PROFILE") == "" {
		return func() {}
	}
	type stat struct {
		d time.Duration
		n int
	}
	byOp := map[string]*stat{}
	// The thread's CPU time (clock_gettime(CLOCK_THREAD_CPUTIME_ID)): at
	// one thread the kernels run on the calling goroutine, locked to its
	// thread here; steadier than wall time on a shared machine.
	runtime.LockOSThread()
	nodeClock = func() time.Duration {
		var ts syscall.Timespec
		syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0)
		return time.Duration(ts.Nano())
	}
	if os.Getenv("GRAPH_BENCH_PROFILE") == "wall" {
		t0 := time.Now()
		nodeClock = func() time.Duration { return time.Since(t0) }
	}
	nodeTimer = func(n *node, d time.Duration) {
		op := n.op
		if len(op) > 48 {
			op = op[:48]
		}
		s := byOp[op]
		if s == nil {
			s = &stat{}
			byOp[op] = s
		}
		s.d += d
		s.n++
	}
	return func() {
		runtime.UnlockOSThread()
		nodeTimer = nil
		ops := sortedKeys(byOp)
		sort.Slice(ops, func(i, j int) bool { return byOp[ops[i]].d > byOp[ops[j]].d })
		for _, op := range ops {
			s := byOp[op]
			b.Logf("%-50s %9.2f ms/run %6d nodes/run", op, float64(s.d.Microseconds())/1000/float64(b.N), s.n/b.N)
		}
	}
}
