package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convlstm-go/convlstm-go/tensor"
)

// BenchmarkSequenceSteps: 8 concurrent sequences stepping one frame at a
// time through the scheduler (no transport), with batching off
// (maxbatch=1), on (maxbatch=8) and on with a 1 ms batch delay;
// frames/s is the throughput, rows/batch the mean batch formed. Compare
// them in one run: go test ./server -run - -bench SequenceSteps.
func BenchmarkSequenceSteps(b *testing.B) {
	for _, size := range []struct {
		name   string
		hidden []int
		h, w   int
	}{{"mnist-64x64-h64,64", []int{64, 64}, 64, 64}, {"small-16x16-h8,8", []int{8, 8}, 16, 16}} {
		for _, c := range []struct {
			maxBatch int
			delay    time.Duration
		}{{1, 0}, {8, 0}, {8, time.Millisecond}} {
			b.Run(fmt.Sprintf("%s/maxbatch=%d,delay=%v", size.name, c.maxBatch, c.delay), func(b *testing.B) {
				benchSteps(b, size.hidden, size.h, size.w, c.maxBatch, c.delay, 8)
			})
		}
	}
}

func benchSteps(b *testing.B, hidden []int, H, W, maxBatch int, delay time.Duration, seqs int) {
	nb, err := NewNative(randomModel(1, 1, hidden, 3), 0)
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{MaxBatch: maxBatch, BatchDelay: delay, Logger: quietLogger()})
	s.AddModel("m", nb)
	defer s.Shutdown(context.Background())
	x := randomFloats(2, H*W)
	step := func(seq int, start bool) error {
		req := &InferRequest{Model: "m",
			Params:  map[string]Param{"sequence_id": {Kind: ParamUint, Uint: uint64(seq + 1)}, "sequence_start": {Kind: ParamBool, Bool: start}},
			Inputs:  []Input{{Name: "input", Datatype: "FP32", Tensor: tensor.FromFloats(x, 1, 1, 1, H, W)}},
			Outputs: []OutputRequest{{Name: "output"}},
		}
		_, err := s.Infer(context.Background(), req)
		return err
	}
	for i := range seqs {
		if err := step(i, true); err != nil {
			b.Fatal(err)
		}
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	t0 := time.Now()
	for i := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := step(i, false); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "frames/s")
	mfs, _ := s.cfg.Registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "convlstm_batch_size" {
			h := mf.GetMetric()[0].GetHistogram()
			b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount()), "rows/batch")
		}
	}
}
