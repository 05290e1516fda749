package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series. Model labels only ever take
// the names of served models ("" for requests naming none of them), so a
// client cannot grow the series without bound.
type metrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	queue      *prometheus.HistogramVec
	compute    *prometheus.HistogramVec
	batch      *prometheus.HistogramVec
	sequences  *prometheus.GaugeVec
	stateBytes *prometheus.GaugeVec
	expired    *prometheus.CounterVec
	inflight   *prometheus.GaugeVec
	queued     *prometheus.GaugeVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	lat := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convlstm_requests_total",
			Help: "Inference requests answered, by model, protocol (http, grpc) and status (the HTTP status code; for gRPC the HTTP code of the same meaning).",
		}, []string{"model", "protocol", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "convlstm_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer (decoding, queueing, compute, encoding).",
			Buckets: lat,
		}, []string{"model", "protocol"}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "convlstm_queue_duration_seconds",
			Help:    "Time a request waited in the scheduler before its batch started (its sequence's earlier steps included).",
			Buckets: lat,
		}, []string{"model"}),
		compute: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "convlstm_compute_duration_seconds",
			Help:    "Time of one forward pass (one batch).",
			Buckets: lat,
		}, []string{"model"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "convlstm_batch_size",
			Help:    "Rows (B) stacked into one forward pass.",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64},
		}, []string{"model"}),
		sequences: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "convlstm_sequences_live",
			Help: "Sequences the server holds a state for.",
		}, []string{"model"}),
		stateBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "convlstm_sequence_state_bytes",
			Help: "Memory held by the live sequences' states.",
		}, []string{"model"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convlstm_sequences_expired_total",
			Help: "Sequences freed after --sequence-idle without a step.",
		}, []string{"model"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "convlstm_inflight_requests",
			Help: "Inference requests being served (decoding, waiting or computing).",
		}, []string{"protocol"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "convlstm_queued_requests",
			Help: "Requests in a model's scheduler: waiting for their turn or running (bounded by --max-queue).",
		}, []string{"model"}),
	}
	reg.MustRegister(m.queued, m.requests, m.latency, m.queue, m.compute, m.batch, m.sequences, m.stateBytes, m.expired, m.inflight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
