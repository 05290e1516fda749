package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/convlstm-go/convlstm-go/convlstm"
	"github.com/convlstm-go/convlstm-go/export"
	pb "github.com/convlstm-go/convlstm-go/server/inferencepb"
)

type loadFlags struct {
	url, grpcAddr, protocol, model string
	clients, requests, warmup      int
	frames, seqLength              int
	image                          string
	stateless, asJSON              bool
	maxDuration                    time.Duration
	makeModel, layers              string
}

func init() {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Drive a local `serve` with concurrent sequences and report throughput, latency and memory",
		Long: `Send --requests inference requests to a server on this machine (loopback
addresses only) from --clients concurrent clients, each driving its own
sequence (sequence_id, sequence_start on its first step) of frames of
(1, --frames, C, H, W), and report throughput, latency percentiles, errors
by status, the server's resident memory before and after (from its
/metrics, after --warmup requests) and, from the same metrics, the mean
batch size, compute time per batch and queue time.

It stops after --requests or --max-duration, whichever comes first.

--make-model FILE writes a ConvLSTM with random weights (--layers
IN:HIDDEN,HIDDEN,...:KERNEL, default the mnist-size 1:64,64:3) as
safetensors to serve, and exits.`,
		Example: `  convlstm-run loadtest --make-model /tmp/mnist.safetensors
  convlstm-run serve --model mnist=/tmp/mnist.safetensors --addr 127.0.0.1:8080 --grpc-addr 127.0.0.1:8081 &
  convlstm-run loadtest --url http://127.0.0.1:8080 --model mnist --clients 8 --requests 10000 --image 64x64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.makeModel != "" {
				return makeRandomModel(f.makeModel, f.layers)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.maxDuration)
			defer cancel()
			rep, err := runLoad(ctx, f)
			if err != nil {
				return err
			}
			return rep.print(cmd.OutOrStdout(), f.asJSON)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "http://127.0.0.1:8080", "the server's REST address (also where /metrics is read)")
	fl.StringVar(&f.grpcAddr, "grpc-addr", "127.0.0.1:8081", "the server's gRPC address (with --protocol grpc)")
	fl.StringVar(&f.protocol, "protocol", "rest", "rest (binary tensor data) or grpc (raw contents)")
	fl.StringVar(&f.model, "model", "", "model name (required unless --make-model)")
	fl.IntVar(&f.clients, "clients", 8, "concurrent clients, each with its own sequence")
	fl.IntVar(&f.requests, "requests", 10000, "requests to send in all (after the warm-up)")
	fl.IntVar(&f.warmup, "warmup", 32, "requests sent first and not counted")
	fl.IntVar(&f.frames, "frames", 1, "frames (T) per request")
	fl.IntVar(&f.seqLength, "sequence-length", 0, "restart each client's sequence after this many steps (0: never)")
	fl.StringVar(&f.image, "image", "64x64", "frame size HxW")
	fl.BoolVar(&f.stateless, "stateless", false, "send stateless requests (no sequence parameters)")
	fl.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fl.DurationVar(&f.maxDuration, "max-duration", 10*time.Minute, "stop after this long whatever the count")
	fl.StringVar(&f.makeModel, "make-model", "", "write a random-weight model (safetensors) to this file and exit")
	fl.StringVar(&f.layers, "layers", "1:64,64:3", "with --make-model: IN:HIDDEN,...:KERNEL")
	rootCmd.AddCommand(cmd)
}

// makeRandomModel writes a ConvLSTM with random weights: what a trained
// model of that size costs to run, without its training.
func makeRandomModel(path, layers string) error {
	parts := strings.Split(layers, ":")
	if len(parts) != 3 {
		return fmt.Errorf("--layers %q: want IN:HIDDEN,HIDDEN,...:KERNEL, e.g. 1:64,64:3", layers)
	}
	in, err1 := strconv.Atoi(parts[0])
	k, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("--layers %q: want IN:HIDDEN,HIDDEN,...:KERNEL, e.g. 1:64,64:3", layers)
	}
	rng := rand.New(rand.NewSource(1))
	m := &convlstm.Model{Gates: convlstm.GatesIFOG}
	for _, hs := range strings.Split(parts[1], ",") {
		h, err := strconv.Atoi(hs)
		if err != nil {
			return fmt.Errorf("--layers %q: hidden size %q", layers, hs)
		}
		l := convlstm.Layer{LayerConfig: convlstm.LayerConfig{InputDim: in, HiddenDim: h, KernelH: k, KernelW: k, HasBias: true}}
		scale := 1 / math.Sqrt(float64((in+h)*k*k))
		l.Weight = make([]float32, 4*h*(in+h)*k*k)
		for i := range l.Weight {
			l.Weight[i] = float32(rng.NormFloat64() * scale)
		}
		l.Bias = make([]float32, 4*h)
		m.Layers = append(m.Layers, l)
		in = h
	}
	if err := m.Validate(); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".model-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	if err := export.Safetensors(m, w, export.SafetensorsOptions{}); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loopbackOnly refuses any host that is not on this machine.
func loopbackOnly(flag, host string) error {
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("%s: %v", flag, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s: %s resolves to %s, not a loopback address; loadtest only drives servers on this machine", flag, host, ip)
		}
	}
	return nil
}

type loadReport struct {
	Protocol       string         `json:"protocol"`
	Model          string         `json:"model"`
	Clients        int            `json:"clients"`
	Shape          []int          `json:"shape"`
	Requests       int            `json:"requests"`
	Errors         int            `json:"errors"`
	ErrorsByStatus map[string]int `json:"errors_by_status,omitempty"`
	FirstError     string         `json:"first_error,omitempty"`
	Seconds        float64        `json:"seconds"`
	Throughput     float64        `json:"requests_per_second"`
	FramesPerSec   float64        `json:"frames_per_second"`
	P50, P90, P99  float64        // milliseconds
	Max            float64
	RSSBefore      float64 `json:"server_rss_mib_before"`
	RSSAfter       float64 `json:"server_rss_mib_after"`
	MeanBatch      float64 `json:"server_mean_batch_rows"`
	MeanCompute    float64 `json:"server_mean_compute_ms_per_batch"`
	MeanQueue      float64 `json:"server_mean_queue_ms"`
}

func (r *loadReport) print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "target      %s model %q, %d clients, input %v per request\n", r.Protocol, r.Model, r.Clients, r.Shape)
	fmt.Fprintf(w, "requests    %d in %.2f s, %d errors %v\n", r.Requests, r.Seconds, r.Errors, r.ErrorsByStatus)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "throughput  %.1f requests/s, %.1f frames/s\n", r.Throughput, r.FramesPerSec)
	fmt.Fprintf(w, "latency     p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", r.P50, r.P90, r.P99, r.Max)
	fmt.Fprintf(w, "server      RSS %.1f MiB -> %.1f MiB; mean batch %.2f rows, %.2f ms compute per batch, %.2f ms queued per request\n", r.RSSBefore, r.RSSAfter, r.MeanBatch, r.MeanCompute, r.MeanQueue)
	return nil
}

// serverMetrics reads the series loadtest reports from /metrics.
func serverMetrics(base string) (map[string]float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		name := l[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}

type client interface {
	step(ctx context.Context, seq uint64, start bool, x []byte) (string, error)
	close()
}

func runLoad(ctx context.Context, f loadFlags) (*loadReport, error) {
	if f.model == "" {
		return nil, fmt.Errorf("loadtest needs --model NAME")
	}
	u, err := url.Parse(f.url)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--url %q: want e.g. http://127.0.0.1:8080", f.url)
	}
	if err := loopbackOnly("--url", u.Hostname()); err != nil {
		return nil, err
	}
	var H, W int
	if _, err := fmt.Sscanf(f.image, "%dx%d", &H, &W); err != nil || H < 1 || W < 1 {
		return nil, fmt.Errorf("--image %q: want HxW, e.g. 64x64", f.image)
	}
	if f.clients < 1 || f.requests < 1 || f.frames < 1 || f.clients > 4096 || f.requests > 10_000_000 {
		return nil, fmt.Errorf("--clients (1..4096), --requests (1..10^7) and --frames must be positive")
	}
	base := strings.TrimSuffix(f.url, "/")
	// Channels from the model's metadata.
	resp, err := http.Get(base + "/v2/models/" + f.model)
	if err != nil {
		return nil, err
	}
	var meta struct {
		Inputs []struct {
			Name  string  `json:"name"`
			Shape []int64 `json:"shape"`
		} `json:"inputs"`
		Error string `json:"error"`
	}
	err = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(meta.Inputs) == 0 || len(meta.Inputs[0].Shape) != 5 || meta.Inputs[0].Shape[2] < 1 {
		return nil, fmt.Errorf("model %q: metadata %d %v %s: want a model whose first input is (B, T, C, H, W) with C fixed", f.model, resp.StatusCode, err, meta.Error)
	}
	shape := []int{1, f.frames, int(meta.Inputs[0].Shape[2]), H, W}
	var c client
	switch f.protocol {
	case "rest":
		c = &restClient{base: base, model: f.model, input: meta.Inputs[0].Name, shape: shape, stateless: f.stateless,
			hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: f.clients + 4}}}
	case "grpc":
		host, _, err := net.SplitHostPort(f.grpcAddr)
		if err != nil {
			return nil, fmt.Errorf("--grpc-addr %q: %v", f.grpcAddr, err)
		}
		if err := loopbackOnly("--grpc-addr", host); err != nil {
			return nil, err
		}
		conn, err := grpc.NewClient(f.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
		if err != nil {
			return nil, err
		}
		c = &grpcClient{conn: conn, c: pb.NewGRPCInferenceServiceClient(conn), model: f.model, input: meta.Inputs[0].Name, shape: shape, stateless: f.stateless}
	default:
		return nil, fmt.Errorf("--protocol %q: want rest or grpc", f.protocol)
	}
	defer c.close()

	n := 1
	for _, d := range shape {
		n *= d
	}
	inputs := make([][]byte, f.clients)
	rng := rand.New(rand.NewSource(2))
	for i := range inputs {
		b := make([]byte, 0, 4*n)
		for range n {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(rng.Float64())))
		}
		inputs[i] = b
	}
	rep := &loadReport{Protocol: f.protocol, Model: f.model, Clients: f.clients, Shape: shape, ErrorsByStatus: map[string]int{}}
	var mu sync.Mutex
	var lat []float64
	// phase runs count requests over the clients.
	phase := func(count int, record bool, seqBase uint64) {
		var next int
		var wg sync.WaitGroup
		for i := range f.clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				steps := 0
				for ctx.Err() == nil {
					mu.Lock()
					if next >= count {
						mu.Unlock()
						return
					}
					next++
					mu.Unlock()
					start := steps == 0 || f.seqLength > 0 && steps%f.seqLength == 0
					seq := seqBase + uint64(i)
					if f.seqLength > 0 {
						seq += uint64(steps/f.seqLength) << 20
					}
					t0 := time.Now()
					code, err := c.step(ctx, seq, start, inputs[i])
					d := time.Since(t0)
					steps++
					if !record {
						continue
					}
					mu.Lock()
					if err != nil {
						rep.Errors++
						rep.ErrorsByStatus[code]++
						if rep.FirstError == "" {
							rep.FirstError = err.Error()
						}
					} else {
						lat = append(lat, float64(d.Microseconds())/1000)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	phase(f.warmup, false, 1<<40)
	before, err := serverMetrics(base)
	if err != nil {
		return nil, fmt.Errorf("reading %s/metrics: %v", base, err)
	}
	t0 := time.Now()
	phase(f.requests, true, 2<<40)
	rep.Seconds = time.Since(t0).Seconds()
	after, err := serverMetrics(base)
	if err != nil {
		return nil, fmt.Errorf("reading %s/metrics: %v", base, err)
	}
	rep.Requests = len(lat) + rep.Errors
	if ctx.Err() != nil && rep.Requests < f.requests {
		rep.FirstError = strings.TrimSpace(rep.FirstError + fmt.Sprintf(" (stopped by --max-duration after %d requests)", rep.Requests))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)]
	}
	rep.P50, rep.P90, rep.P99 = pct(0.50), pct(0.90), pct(0.99)
	if len(lat) > 0 {
		rep.Max = lat[len(lat)-1]
	}
	rep.Throughput = float64(len(lat)) / rep.Seconds
	rep.FramesPerSec = rep.Throughput * float64(f.frames)
	rep.RSSBefore = before["process_resident_memory_bytes"] / (1 << 20)
	rep.RSSAfter = after["process_resident_memory_bytes"] / (1 << 20)
	delta := func(k string) float64 { return after[k] - before[k] }
	if b := delta("convlstm_batch_size_count"); b > 0 {
		rep.MeanBatch = delta("convlstm_batch_size_sum") / b
		rep.MeanCompute = 1000 * delta("convlstm_compute_duration_seconds_sum") / delta("convlstm_compute_duration_seconds_count")
	}
	if q := delta("convlstm_queue_duration_seconds_count"); q > 0 {
		rep.MeanQueue = 1000 * delta("convlstm_queue_duration_seconds_sum") / q
	}
	return rep, nil
}

func seqParamsJSON(seq uint64, start bool) map[string]any {
	return map[string]any{"sequence_id": seq, "sequence_start": start}
}

type restClient struct {
	base, model, input string
	shape              []int
	stateless          bool
	hc                 *http.Client
}

func (r *restClient) step(ctx context.Context, seq uint64, start bool, x []byte) (string, error) {
	req := map[string]any{
		"inputs":  []any{map[string]any{"name": r.input, "shape": r.shape, "datatype": "FP32", "parameters": map[string]any{"binary_data_size": len(x)}}},
		"outputs": []any{map[string]any{"name": "output", "parameters": map[string]any{"binary_data": true}}},
	}
	if !r.stateless {
		req["parameters"] = seqParamsJSON(seq, start)
	}
	head, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/v2/models/"+r.model+"/infer", io.MultiReader(bytes.NewReader(head), bytes.NewReader(x)))
	if err != nil {
		return "client", err
	}
	hr.ContentLength = int64(len(head) + len(x))
	hr.Header.Set("Content-Type", "application/octet-stream")
	hr.Header.Set("Inference-Header-Content-Length", strconv.Itoa(len(head)))
	if seq != 0 && !r.stateless {
		hr.Header.Set("X-Sequence-Id", strconv.FormatUint(seq, 10))
	}
	resp, err := r.hc.Do(hr)
	if err != nil {
		return "transport", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "transport", err
	}
	if resp.StatusCode != 200 {
		return strconv.Itoa(resp.StatusCode), fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return "200", nil
}

func (r *restClient) close() { r.hc.CloseIdleConnections() }

type grpcClient struct {
	conn         *grpc.ClientConn
	c            pb.GRPCInferenceServiceClient
	model, input string
	shape        []int
	stateless    bool
}

func (g *grpcClient) step(ctx context.Context, seq uint64, start bool, x []byte) (string, error) {
	shape := make([]int64, len(g.shape))
	for i, d := range g.shape {
		shape[i] = int64(d)
	}
	req := &pb.ModelInferRequest{
		ModelName:        g.model,
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: g.input, Datatype: "FP32", Shape: shape}},
		Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "output"}},
		RawInputContents: [][]byte{x},
	}
	if !g.stateless {
		req.Parameters = map[string]*pb.InferParameter{
			"sequence_id":    {ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: seq}},
			"sequence_start": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: start}},
		}
	}
	_, err := g.c.ModelInfer(ctx, req)
	return status.Code(err).String(), err
}

func (g *grpcClient) close() { g.conn.Close() }
