package server

import (
	"context"
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/convlstm-go/convlstm-go/runtime"
	pb "github.com/convlstm-go/convlstm-go/server/inferencepb"
)

// seqReq is a REST request of one sequence step.
func seqReq(id any, start, end bool, x []float32, shape []int, outputs ...string) map[string]any {
	r := map[string]any{
		"parameters": map[string]any{"sequence_id": id, "sequence_start": start, "sequence_end": end},
		"inputs":     []any{inputJSON("input", shape, x)},
	}
	var outs []any
	for _, o := range outputs {
		outs = append(outs, map[string]any{"name": o})
	}
	if outs != nil {
		r["outputs"] = outs
	}
	return r
}

// TestSequenceMatchesLongForward: a sequence fed in steps of 1 to 3 frames,
// over REST with a numeric id and over gRPC with a string id, gives the
// output of one forward pass over all the frames, bit for bit, and the
// final state when asked for it.
func TestSequenceMatchesLongForward(t *testing.T) {
	m := randomModel(7, 2, []int{6, 5}, 3)
	ts := startServer(t, Config{}, map[string]Backend{"m": native(t, m)})
	const T, H, W = 9, 7, 6
	frame := 2 * H * W
	x := randomFloats(8, T*frame)
	ref := reference(t, m, x, []int{1, T, 2, H, W}, nil)
	outFrame := len(ref.Output.Data) / T
	steps := []int{1, 3, 2, 1, 1, 1}

	t.Run("rest", func(t *testing.T) {
		t0 := 0
		for i, n := range steps {
			outs := []string{"output"}
			last := i == len(steps)-1
			if last {
				outs = append(outs, "h_0", "c_0", "h_1", "c_1")
			}
			code, a, got := ts.inferJSON(t, "m", seqReq(uint64(1<<40+7), i == 0, last, x[t0*frame:(t0+n)*frame], []int{1, n, 2, H, W}, outs...))
			if code != 200 {
				t.Fatalf("step %d: %d %s", i, code, a.Error)
			}
			sameBits(t, fmt.Sprintf("step %d output", i), got["output"], ref.Output.Data[t0*outFrame:(t0+n)*outFrame])
			if last {
				for l, s := range ref.Final {
					sameBits(t, fmt.Sprintf("final h_%d", l), got[fmt.Sprintf("h_%d", l)], s.H.Data)
					sameBits(t, fmt.Sprintf("final c_%d", l), got[fmt.Sprintf("c_%d", l)], s.C.Data)
				}
			}
			t0 += n
		}
		// Ended: a further step is refused.
		code, a, _ := ts.inferJSON(t, "m", seqReq(uint64(1<<40+7), false, false, x[:frame], []int{1, 1, 2, H, W}))
		if code != 400 || !contains(a.Error, "not live") {
			t.Errorf("step after end: %d %q, want 400", code, a.Error)
		}
	})

	t.Run("grpc", func(t *testing.T) {
		t0 := 0
		for i, n := range steps {
			p := map[string]*pb.InferParameter{
				"sequence_id":    {ParameterChoice: &pb.InferParameter_StringParam{StringParam: "radar-7"}},
				"sequence_start": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: i == 0}},
			}
			r, err := ts.gc.ModelInfer(context.Background(), grpcRequest("m", p, map[string][]float32{"input": x[t0*frame : (t0+n)*frame]}, map[string][]int{"input": {1, n, 2, H, W}}, "output", "c_1"))
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			got := grpcOutputs(t, r)
			sameBits(t, fmt.Sprintf("step %d output", i), got["output"], ref.Output.Data[t0*outFrame:(t0+n)*outFrame])
			t0 += n
			if t0 == T {
				sameBits(t, "final c_1", got["c_1"], ref.Final[1].C.Data)
			}
		}
	})
}

// TestSequenceMovesBetweenServers: the state asked back from one server
// and carried into a start on another continues the sequence exactly.
func TestSequenceMovesBetweenServers(t *testing.T) {
	m := randomModel(9, 1, []int{4, 3}, 5)
	before := goruntime.NumGoroutine()
	t.Cleanup(func() { checkGoroutines(t, before) })
	a := startServerLeak(t, Config{}, map[string]Backend{"m": native(t, m)}, false)
	b := startServerLeak(t, Config{}, map[string]Backend{"m": native(t, m)}, false)
	const T, H, W = 4, 6, 6
	x := randomFloats(10, T*H*W)
	ref := reference(t, m, x, []int{1, T, 1, H, W}, nil)
	code, ans, got := a.inferJSON(t, "m", seqReq("s", true, true, x[:2*H*W], []int{1, 2, 1, H, W}))
	if code != 200 {
		t.Fatal(ans.Error)
	}
	r := seqReq("s", true, false, x[2*H*W:], []int{1, 2, 1, H, W}, "output")
	inputs := r["inputs"].([]any)
	for l, hd := range []int{4, 3} {
		for _, k := range []string{"h", "c"} {
			n := fmt.Sprintf("%s_%d", k, l)
			inputs = append(inputs, inputJSON(n, []int{1, hd, H, W}, got[n]))
		}
	}
	r["inputs"] = inputs
	code, ans, got = b.inferJSON(t, "m", r)
	if code != 200 {
		t.Fatal(ans.Error)
	}
	half := len(ref.Output.Data) / 2
	sameBits(t, "continued on the other server", got["output"], ref.Output.Data[half:])
}

func TestSequenceRules(t *testing.T) {
	m := randomModel(11, 1, []int{3}, 3)
	ts := startServer(t, Config{MaxSequences: 2, SequenceIdle: time.Second}, map[string]Backend{"m": native(t, m)})
	shape := []int{1, 1, 1, 4, 4}
	x := randomFloats(12, 16)
	step := func(id any, start, end bool, x []float32, shape []int) (int, string, []float32) {
		code, a, got := ts.inferJSON(t, "m", seqReq(id, start, end, x, shape, "output"))
		return code, a.Error, got["output"]
	}
	if code, e, _ := step(99, false, false, x, shape); code != 400 || !contains(e, "never started") {
		t.Errorf("unknown id: %d %q", code, e)
	}
	if code, e, _ := step(0, true, false, x, shape); code != 400 || !contains(e, "sequence_id") {
		t.Errorf("start with id 0: %d %q", code, e)
	}
	if code, e, _ := step(-3, true, false, x, shape); code != 400 {
		t.Errorf("negative id: %d %q", code, e)
	}
	if code, e, _ := step(1, true, false, x, shape); code != 200 {
		t.Fatalf("start 1: %d %q", code, e)
	}
	// The affinity header must name the same sequence.
	body, _ := json.Marshal(seqReq(1, false, false, x, shape, "output"))
	if code, _, b := ts.post(t, "/v2/models/m/infer", body, map[string]string{SequenceHeader: "2"}); code != 400 || !contains(string(b), SequenceHeader) {
		t.Errorf("header naming another sequence: %d %s", code, b)
	}
	if code, _, b := ts.post(t, "/v2/models/m/infer", body, map[string]string{SequenceHeader: "1"}); code != 200 {
		t.Errorf("header naming the sequence: %d %s", code, b)
	}
	// Wrong image size for the held state.
	if code, e, _ := step(1, false, false, make([]float32, 25), []int{1, 1, 1, 5, 5}); code != 400 || !contains(e, "4×4") {
		t.Errorf("other image size: %d %q", code, e)
	}
	// State inputs on a continuing step.
	r := seqReq(1, false, false, x, shape)
	r["inputs"] = append(r["inputs"].([]any), inputJSON("h_0", []int{1, 3, 4, 4}, make([]float32, 48)), inputJSON("c_0", []int{1, 3, 4, 4}, make([]float32, 48)))
	if code, a, _ := ts.inferJSON(t, "m", r); code != 400 || !contains(a.Error, "state") {
		t.Errorf("state inputs mid-sequence: %d %q", code, a.Error)
	}
	// A start on a live id restarts it: the output is a fresh start's.
	_, _, fresh := step(1, true, false, x, shape)
	_, _, again := step(1, true, false, x, shape)
	sameBits(t, "restart", again, fresh)
	_, _, second := step(1, false, false, x, shape)
	ref := reference(t, m, append(append([]float32{}, x...), x...), []int{1, 2, 1, 4, 4}, nil)
	sameBits(t, "after restart", second, ref.Output.Data[len(ref.Output.Data)/2:])
	// --max-sequences 2: a third is 503, ending one makes room.
	if code, e, _ := step("two", true, false, x, shape); code != 200 {
		t.Fatalf("start two: %d %q", code, e)
	}
	if code, e, _ := step("three", true, false, x, shape); code != 503 || !contains(e, "max-sequences") {
		t.Errorf("third sequence: %d %q, want 503", code, e)
	}
	// uint 1 and string "1" are different sequences.
	if code, _, _ := step("1", false, false, x, shape); code != 400 {
		t.Errorf("string id \"1\" continued numeric id 1: %d", code)
	}
	if code, e, _ := step("two", false, true, x, shape); code != 200 {
		t.Fatalf("end two: %d %q", code, e)
	}
	if code, e, _ := step("three", true, false, x, shape); code != 200 {
		t.Errorf("third sequence after one ended: %d %q", code, e)
	}
	// Idle sequences are freed.
	time.Sleep(2500 * time.Millisecond)
	if code, e, _ := step(1, false, false, x, shape); code != 400 {
		t.Errorf("step after --sequence-idle: %d %q, want 400", code, e)
	}
	if n := ts.s.models["m"].sched; n == nil {
		t.Fatal("no scheduler")
	}
	if code, b := ts.get(t, "/metrics"); code != 200 || !contains(string(b), `convlstm_sequences_expired_total{model="m"} 2`) || !contains(string(b), `convlstm_sequences_live{model="m"} 0`) {
		t.Errorf("metrics after expiry: %d\n%s", code, grepLines(string(b), "sequences"))
	}
}

func grepLines(s, sub string) string {
	var out string
	for _, l := range splitLines(s) {
		if contains(l, sub) {
			out += l + "\n"
		}
	}
	return out
}

func splitLines(s string) []string {
	var ls []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		ls = append(ls, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return ls
}

// TestSequenceOrder: steps of one sequence sent back to back on a gRPC
// stream, without waiting for answers, are applied and answered in order.
func TestSequenceOrderOnStream(t *testing.T) {
	m := randomModel(13, 1, []int{4}, 3)
	ts := startServer(t, Config{MaxBatch: 4}, map[string]Backend{"m": native(t, m)})
	const T, H, W, S = 12, 5, 5, 3
	xs := make([][]float32, S)
	refs := make([]*runtime.Result, S)
	for s := range S {
		xs[s] = randomFloats(int64(20+s), T*H*W)
		refs[s] = reference(t, m, xs[s], []int{1, T, 1, H, W}, nil)
	}
	stream, err := ts.gc.ModelStreamInfer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for tt := range T {
		for s := range S {
			r := grpcRequest("m", seqParamsPB(uint64(s+1), tt == 0, tt == T-1), map[string][]float32{"input": xs[s][tt*H*W : (tt+1)*H*W]}, map[string][]int{"input": {1, 1, 1, H, W}}, "output")
			r.Id = fmt.Sprintf("%d/%d", s, tt)
			if err := stream.Send(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A bad request on the stream gets an error_message, the stream goes on.
	bad := grpcRequest("m", seqParamsPB(77, false, false), map[string][]float32{"input": xs[0][:H*W]}, map[string][]int{"input": {1, 1, 1, H, W}})
	bad.Id = "bad"
	if err := stream.Send(bad); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, S)
	sawBad := false
	for range T*S + 1 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.InferResponse.GetId() == "bad" {
			if resp.ErrorMessage == "" {
				t.Error("bad request: no error_message")
			}
			sawBad = true
			continue
		}
		if resp.ErrorMessage != "" {
			t.Fatalf("%s: %s", resp.InferResponse.GetId(), resp.ErrorMessage)
		}
		var s, tt int
		fmt.Sscanf(resp.InferResponse.Id, "%d/%d", &s, &tt)
		if tt != next[s] {
			t.Fatalf("sequence %d: answer for step %d came before step %d's", s, tt, next[s])
		}
		next[s]++
		on := len(refs[s].Output.Data) / T
		sameBits(t, "stream "+resp.InferResponse.Id, grpcOutputs(t, resp.InferResponse)["output"], refs[s].Output.Data[tt*on:(tt+1)*on])
	}
	if !sawBad {
		t.Error("no answer for the bad request")
	}
}

// TestBatchingIsExact: concurrent steps of several sequences and
// concurrent stateless requests are stacked (the batch-size histogram
// says so) and each answer is bit-identical to running it alone.
func TestBatchingIsExact(t *testing.T) {
	m := randomModel(15, 1, []int{8, 4}, 3)
	ts := startServer(t, Config{MaxBatch: 4, BatchDelay: 2 * time.Second}, map[string]Backend{"m": native(t, m)})
	const T, H, W, S = 3, 6, 5, 4
	xs := make([][]float32, S)
	refs := make([]*runtime.Result, S)
	for s := range S {
		xs[s] = randomFloats(int64(30+s), T*H*W)
		refs[s] = reference(t, m, xs[s], []int{1, T, 1, H, W}, nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, S*(T+1))
	for s := range S {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tt := range T {
				code, a, got := ts.inferJSON(t, "m", seqReq(fmt.Sprint("seq", s), tt == 0, tt == T-1, xs[s][tt*H*W:(tt+1)*H*W], []int{1, 1, 1, H, W}, "output"))
				if code != 200 {
					errs <- fmt.Errorf("sequence %d step %d: %d %s", s, tt, code, a.Error)
					return
				}
				on := len(refs[s].Output.Data) / T
				want := refs[s].Output.Data[tt*on : (tt+1)*on]
				for i := range want {
					if got["output"][i] != want[i] {
						errs <- fmt.Errorf("sequence %d step %d: value %d is %v, want %v", s, tt, i, got["output"][i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	// Stateless: a batch-2 request and two batch-1 requests, stacked.
	xb := randomFloats(40, 2*T*H*W)
	refb := reference(t, m, xb, []int{2, T, 1, H, W}, nil)
	reqs := []struct {
		x     []float32
		shape []int
		want  []float32
	}{{xb, []int{2, T, 1, H, W}, refb.Output.Data}, {xs[0], []int{1, T, 1, H, W}, refs[0].Output.Data}, {xs[1], []int{1, T, 1, H, W}, refs[1].Output.Data}}
	for _, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, a, got := ts.inferJSON(t, "m", map[string]any{"inputs": []any{inputJSON("input", r.shape, r.x)}, "outputs": []any{map[string]any{"name": "output"}}})
			if code != 200 {
				errs <- fmt.Errorf("stateless: %d %s", code, a.Error)
				return
			}
			for i := range r.want {
				if got["output"][i] != r.want[i] {
					errs <- fmt.Errorf("stateless batch %v: value %d differs", r.shape, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, b := ts.get(t, "/metrics")
	// S sequences × T steps in T batches of S rows, then one batch of 4 rows.
	if !contains(string(b), fmt.Sprintf(`convlstm_batch_size_sum{model="m"} %d`, S*T+4)) || !contains(string(b), fmt.Sprintf(`convlstm_batch_size_count{model="m"} %d`, T+1)) {
		t.Errorf("batches were not stacked as expected:\n%s", grepLines(string(b), "batch_size"))
	}
}
