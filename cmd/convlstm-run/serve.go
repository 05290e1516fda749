package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/convlstm-go/convlstm-go/server"
)

type serveFlags struct {
	models           []string
	addr, grpcAddr   string
	threads          int
	maxBody          string
	maxRequestMemory string
	maxStateMemory   string
	maxBatch         int
	batchDelay       time.Duration
	maxSequences     int
	sequenceIdle     time.Duration
	maxQueue         int
	requestTimeout   time.Duration
	shutdownTimeout  time.Duration
	logFormat        string
	logLevel         string
}

func init() {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve models over the Open Inference Protocol (v2): REST and gRPC, stateful sequences, dynamic batching",
		Long: `Serve one or more models over the Open Inference Protocol (v2), the
protocol of KServe, Triton Inference Server and Seldon MLServer, on REST
(--addr) and gRPC (--grpc-addr).

--model NAME=FILE takes any file run accepts (.pt/.pth, safetensors, .npz
weights, ONNX graphs); add ,prefix=P and/or ,gates=G to choose the ConvLSTM
in the file and its gate order, as run's --prefix and --gates do. Repeat it
for several models. The server answers /v2/health/live at once and
/v2/health/ready once every model is loaded.

A native ConvLSTM model takes input (B, T, C, H, W) and optional initial
states h_l, c_l (B, hidden_l, H, W) and answers output (B, T, hidden, H, W)
and the final h_l, c_l: what run reads and writes. Stateful sequences follow
Triton's sequence batcher: the request parameters sequence_id (unsigned
integer or string), sequence_start and sequence_end; the server keeps each
sequence's state between requests. Concurrent requests of equal T, H and W
are stacked into one forward pass (--max-batch, --batch-delay) with results
identical to running them alone.

Metrics for Prometheus are on /metrics of --addr. SIGTERM or SIGINT stops
accepting, finishes the requests in flight (up to --shutdown-timeout) and
exits 0.`,
		Example: `  convlstm-run serve --model radar=radar.pt
  convlstm-run serve --model enc=ckpt.pth,prefix=enc1 --model onnx=model.onnx --addr :8080 --grpc-addr :8081 --threads 4
  curl -s localhost:8080/v2/models/radar`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, cmd.ErrOrStderr(), f, nil)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.models, "model", nil, "NAME=FILE[,prefix=P][,gates=G]: a model to serve (repeatable)")
	fl.StringVar(&f.addr, "addr", fmt.Sprintf(":%d", server.DefaultHTTPPort), "REST (and /metrics) listen address; empty: no REST")
	fl.StringVar(&f.grpcAddr, "grpc-addr", fmt.Sprintf(":%d", server.DefaultGRPCPort), "gRPC listen address; empty: no gRPC")
	fl.IntVar(&f.threads, "threads", 0, "worker threads per model (0: all cores)")
	fl.StringVar(&f.maxBody, "max-body", "64MiB", "largest REST body or gRPC message (413 / RESOURCE_EXHAUSTED past it)")
	fl.StringVar(&f.maxRequestMemory, "max-request-memory", "1GiB", "most memory one request's forward pass may need (estimated; 413 past it)")
	fl.IntVar(&f.maxBatch, "max-batch", 1, "most batch rows stacked into one forward pass (1: no batching; pays for small frames, see deploy/README.md)")
	fl.DurationVar(&f.batchDelay, "batch-delay", 0, "how long a request may wait for others to batch with when the model is idle")
	fl.IntVar(&f.maxSequences, "max-sequences", 1024, "most live sequences per model (503 past it)")
	fl.StringVar(&f.maxStateMemory, "max-state-memory", "2GiB", "most memory the live sequences' states of one model may hold (503 past it)")
	fl.DurationVar(&f.sequenceIdle, "sequence-idle", 60*time.Second, "free a sequence after this long without a step")
	fl.IntVar(&f.maxQueue, "max-queue", 1024, "most requests waiting per model (503 past it)")
	fl.DurationVar(&f.requestTimeout, "request-timeout", 60*time.Second, "longest a request may take from arrival to answer (a request's timeout parameter or gRPC deadline may shorten it)")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	fl.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	rootCmd.AddCommand(cmd)
}

// modelSpec is one --model flag.
type modelSpec struct {
	name, file string
	opts       server.OpenOptions
}

func parseModelSpec(s string, threads int) (modelSpec, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" || rest == "" {
		return modelSpec{}, fmt.Errorf("--model %q: want NAME=FILE[,prefix=P][,gates=G]", s)
	}
	spec := modelSpec{name: name, file: rest, opts: server.OpenOptions{Threads: threads}}
	// Options are trailing ,key=value parts; anything else stays in the path.
	for {
		i := strings.LastIndexByte(spec.file, ',')
		if i < 0 {
			break
		}
		k, v, ok := strings.Cut(spec.file[i+1:], "=")
		if !ok || (k != "prefix" && k != "gates") {
			break
		}
		if k == "prefix" {
			spec.opts.Prefix = v
		} else {
			spec.opts.Gates = v
		}
		spec.file = spec.file[:i]
	}
	return spec, nil
}

// parseBytes reads a size such as 67108864, 64MiB, 64M or 1GiB.
func parseBytes(flag, s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("--%s %q: want a positive size such as 67108864, 64MiB or 1GiB", flag, s)
	}
	return n * mult, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", format)
}

// runServe serves until ctx ends (a signal), then shuts down gracefully
// and returns nil. onListen, if set, is told the bound addresses.
func runServe(ctx context.Context, logOut io.Writer, f serveFlags, onListen func(httpAddr, grpcAddr string)) error {
	if len(f.models) == 0 {
		return fmt.Errorf("serve needs at least one --model NAME=FILE")
	}
	if f.addr == "" && f.grpcAddr == "" {
		return fmt.Errorf("--addr and --grpc-addr are both empty: nothing to serve on")
	}
	var specs []modelSpec
	seen := map[string]bool{}
	for _, m := range f.models {
		s, err := parseModelSpec(m, f.threads)
		if err != nil {
			return err
		}
		if seen[s.name] {
			return fmt.Errorf("--model %q: the name %q is used twice", m, s.name)
		}
		seen[s.name] = true
		specs = append(specs, s)
	}
	log, err := newLogger(logOut, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	cfg := server.Config{Logger: log, MaxBatch: f.maxBatch, BatchDelay: f.batchDelay, MaxSequences: f.maxSequences, SequenceIdle: f.sequenceIdle, MaxQueue: f.maxQueue, RequestTimeout: f.requestTimeout}
	if cfg.MaxBody, err = parseBytes("max-body", f.maxBody); err != nil {
		return err
	}
	if cfg.MaxRequestMemory, err = parseBytes("max-request-memory", f.maxRequestMemory); err != nil {
		return err
	}
	if cfg.MaxStateMemory, err = parseBytes("max-state-memory", f.maxStateMemory); err != nil {
		return err
	}
	if f.maxBatch < 1 || f.maxSequences < 1 || f.maxQueue < 1 || f.batchDelay < 0 || f.sequenceIdle <= 0 || f.requestTimeout <= 0 {
		return fmt.Errorf("--max-batch, --max-sequences and --max-queue must be at least 1, --batch-delay not negative, --sequence-idle and --request-timeout positive")
	}
	srv := server.New(cfg)
	for _, s := range specs {
		srv.Expect(s.name)
	}
	var hl, gl net.Listener
	if f.addr != "" {
		if hl, err = net.Listen("tcp", f.addr); err != nil {
			return fmt.Errorf("--addr: %w", err)
		}
	}
	if f.grpcAddr != "" {
		if gl, err = net.Listen("tcp", f.grpcAddr); err != nil {
			if hl != nil {
				hl.Close()
			}
			return fmt.Errorf("--grpc-addr: %w", err)
		}
	}
	addrs := []any{}
	var ha, ga string
	if hl != nil {
		ha = hl.Addr().String()
		addrs = append(addrs, "rest", ha)
	}
	if gl != nil {
		ga = gl.Addr().String()
		addrs = append(addrs, "grpc", ga)
	}
	log.Info("listening (live; ready once every model is loaded)", addrs...)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(hl, gl) }()
	if onListen != nil {
		onListen(ha, ga)
	}
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-served; serr != nil && err == nil {
			err = serr
		}
		return err
	}
	for _, s := range specs {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		file, err := modelFile(s.file)
		if err != nil {
			shutdown()
			return fmt.Errorf("--model %s: %w", s.name, err)
		}
		b, err := server.Open(file, s.opts)
		if err != nil {
			shutdown()
			return fmt.Errorf("--model %s: %w", s.name, err)
		}
		if err := srv.AddModel(s.name, b); err != nil {
			b.Close()
			shutdown()
			return err
		}
		log.Info("model loaded", "model", s.name, "file", file, "seconds", time.Since(t0).Seconds())
	}
	select {
	case <-ctx.Done():
		log.Info("signal received, shutting down", "timeout", f.shutdownTimeout.String())
	case err := <-served:
		served <- err
		log.Error("a listener failed", "error", err)
	}
	if err := shutdown(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// modelFile resolves a --model path: a file, or a directory holding
// exactly one model file (what KServe's storage initializer leaves in
// /mnt/models), hidden files ignored.
func modelFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return path, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return "", err
	}
	var files []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() && e.Type()&os.ModeSymlink == 0 {
			continue
		}
		files = append(files, e.Name())
	}
	if len(files) != 1 {
		return "", fmt.Errorf("%s is a directory with %d model files %v; it must hold exactly one, or name the file", path, len(files), files)
	}
	return filepath.Join(path, files[0]), nil
}
