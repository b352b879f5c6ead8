package salesforce

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The metrics carry no namespace: the daemon adds omniroute_ once, with
// prometheus.WrapRegistererWithPrefix, on the Registerer it passes in the options. A nil
// Registerer registers nothing (the metrics still count, unexposed). Registering a second
// client of the same kind on one Registerer is an error from New, NewTokenSource or NewStream.

// register runs build, turning promauto's panic on a duplicate registration into an error.
func register[T any](what string, build func() T) (m T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("register %s metrics: %v", what, r)
		}
	}()
	return build(), nil
}

// counterVec, histogramVec and gauge make one metric on f.
func counterVec(f promauto.Factory, name, help string, labels ...string) *prometheus.CounterVec {
	return f.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func histogramVec(f promauto.Factory, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return f.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}

func gauge(f promauto.Factory, name, help string) prometheus.Gauge {
	return f.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

// clientMetrics are the REST client's metrics.
type clientMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	apiUsed  prometheus.Gauge
	apiLimit prometheus.Gauge
	skipped  *prometheus.CounterVec
}

func newClientMetrics(reg prometheus.Registerer) (*clientMetrics, error) {
	return register("salesforce client", func() *clientMetrics {
		f := promauto.With(reg)
		return &clientMetrics{
			requests: counterVec(f, "salesforce_requests_total",
				"Salesforce REST requests by operation and HTTP status code (\"error\" when no response arrived).", "operation", "code"),
			duration: histogramVec(f, "salesforce_request_duration_seconds",
				"Latency of Salesforce REST requests by operation, one observation per HTTP attempt.",
				[]float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}, "operation"),
			retries: counterVec(f, "salesforce_retries_total",
				"Salesforce REST requests sent again, by operation and reason (status code, error code, session or network).", "operation", "reason"),
			apiUsed: gauge(f, "salesforce_api_requests_used",
				"API requests used in the org's rolling 24-hour allocation, from the last Sforce-Limit-Info header."),
			apiLimit: gauge(f, "salesforce_api_requests_limit",
				"The org's rolling 24-hour API request allocation, from the last Sforce-Limit-Info header."),
			skipped: counterVec(f, "salesforce_query_records_skipped_total",
				"Query records skipped because they do not decode into their type (each logged with its Id), by sObject.", "sobject"),
		}
	})
}

// newTokenMetrics returns the token source's refresh counter, by result.
func newTokenMetrics(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	return register("salesforce token", func() *prometheus.CounterVec {
		refreshes := counterVec(promauto.With(reg), "salesforce_token_refreshes_total", "OAuth token requests by result (success or error).", "result")
		refreshes.WithLabelValues("success")
		refreshes.WithLabelValues("error")
		return refreshes
	})
}

// streamMetrics are the stream's metrics.
type streamMetrics struct {
	events       *prometheus.CounterVec
	rehandshakes *prometheus.CounterVec
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	badEvents    *prometheus.CounterVec
	missed       *prometheus.CounterVec
	state        *streamState
}

func newStreamMetrics(reg prometheus.Registerer, channels []string, live func() bool) (*streamMetrics, error) {
	return register("stream", func() *streamMetrics {
		f := promauto.With(reg)
		m := &streamMetrics{
			events: counterVec(f, "stream_events_received_total",
				"Streaming API events handed to the handler, by channel (bad events included; see stream_bad_events_total).", "channel"),
			rehandshakes: counterVec(f, "stream_rehandshakes_total", "Bayeux re-handshakes by reason.", "reason"),
			requests: counterVec(f, "stream_requests_total",
				"Bayeux requests by operation (handshake, connect, subscribe, disconnect) and result code.", "operation", "code"),
			duration: histogramVec(f, "stream_request_duration_seconds",
				"Latency of Bayeux requests by operation; connects include the long-poll wait.",
				[]float64{0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120}, "operation"),
			badEvents: counterVec(f, "stream_bad_events_total",
				"Streaming API events that could not be decoded, handed to the handler as bad events, by channel.", "channel"),
			missed: counterVec(f, "stream_missed_total",
				"Reports to the handler that events may have been missed, by channel and cause (replay_refused, not_replayed).", "channel", "cause"),
			state: &streamState{channels: channels, lastEvent: map[string]time.Time{}, lastCommit: map[string]time.Time{}},
		}
		f.NewGaugeFunc(prometheus.GaugeOpts{Name: "stream_live", Help: "1 while every channel is subscribed on a working session, else 0."},
			func() float64 {
				if live() {
					return 1
				}
				return 0
			})
		for _, reason := range []string{"unknown_client", "auth", "advice", "transport", "limit"} {
			m.rehandshakes.WithLabelValues(reason)
		}
		for _, ch := range channels {
			m.events.WithLabelValues(ch)
			m.badEvents.WithLabelValues(ch)
			m.missed.WithLabelValues(ch, "replay_refused")
			m.missed.WithLabelValues(ch, "not_replayed")
		}
		if reg != nil {
			reg.MustRegister(m.state)
		}
		return m
	})
}

// streamState is a collector that reads the stream's clocks at scrape time.
type streamState struct {
	mu         sync.Mutex
	channels   []string
	lastEvent  map[string]time.Time
	lastCommit map[string]time.Time
}

var (
	sinceEventDesc = prometheus.NewDesc("stream_seconds_since_last_event",
		"Seconds since the last event was received on the channel (absent before the first one).", []string{"channel"}, nil)
	lastEventDesc = prometheus.NewDesc("stream_last_event_timestamp_seconds",
		"Unix time of the last event received on the channel.", []string{"channel"}, nil)
	replayAgeDesc = prometheus.NewDesc("stream_last_replay_id_age_seconds",
		"Seconds since the channel's replay id was last committed (absent before the first commit).", []string{"channel"}, nil)
)

func (s *streamState) Describe(ch chan<- *prometheus.Desc) {
	ch <- sinceEventDesc
	ch <- lastEventDesc
	ch <- replayAgeDesc
}

func (s *streamState) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, c := range s.channels {
		if t, ok := s.lastEvent[c]; ok {
			ch <- prometheus.MustNewConstMetric(sinceEventDesc, prometheus.GaugeValue, now.Sub(t).Seconds(), c)
			ch <- prometheus.MustNewConstMetric(lastEventDesc, prometheus.GaugeValue, float64(t.UnixNano())/1e9, c)
		}
		if t, ok := s.lastCommit[c]; ok {
			ch <- prometheus.MustNewConstMetric(replayAgeDesc, prometheus.GaugeValue, now.Sub(t).Seconds(), c)
		}
	}
}

func (s *streamState) mark(m map[string]time.Time, channel string) {
	s.mu.Lock()
	m[channel] = time.Now()
	s.mu.Unlock()
}
