package salesforce

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "omniroute"

// registerOrGet registers c on reg, or returns the collector already
// registered under the same descriptor, so that two clients sharing a
// registerer share their series instead of panicking. A nil reg registers
// nothing: the metrics still count, nobody scrapes them.
func registerOrGet[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		// A different collector under the same name is a programming
		// error of the caller's registry layout; keep counting locally.
		return c
	}
	return c
}

// counterVec, histogramVec and gauge build and register (registerOrGet)
// one omniroute_<subsystem>_<name> metric.
func counterVec(reg prometheus.Registerer, subsystem, name, help string, labels ...string) *prometheus.CounterVec {
	return registerOrGet(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help,
	}, labels))
}

func histogramVec(reg prometheus.Registerer, subsystem, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return registerOrGet(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help, Buckets: buckets,
	}, labels))
}

func gauge(reg prometheus.Registerer, subsystem, name, help string) prometheus.Gauge {
	return registerOrGet(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help,
	}))
}

// clientMetrics are the REST client's metrics (subsystem salesforce).
type clientMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	apiUsed  prometheus.Gauge
	apiLimit prometheus.Gauge
}

func newClientMetrics(reg prometheus.Registerer) *clientMetrics {
	return &clientMetrics{
		requests: counterVec(reg, "salesforce", "requests_total",
			"Salesforce REST and OAuth requests by operation and HTTP status code (\"error\" when no response arrived).", "operation", "code"),
		duration: histogramVec(reg, "salesforce", "request_duration_seconds",
			"Latency of Salesforce REST requests by operation, one observation per HTTP attempt.",
			[]float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}, "operation"),
		retries: counterVec(reg, "salesforce", "retries_total",
			"Salesforce REST requests sent again, by operation and reason (status code, error code, session or network).", "operation", "reason"),
		apiUsed: gauge(reg, "salesforce", "api_requests_used",
			"API requests used in the org's rolling 24-hour allocation, from the last Sforce-Limit-Info header."),
		apiLimit: gauge(reg, "salesforce", "api_requests_limit",
			"The org's rolling 24-hour API request allocation, from the last Sforce-Limit-Info header."),
	}
}

// tokenMetrics are the token source's metrics (subsystem salesforce).
type tokenMetrics struct {
	refreshes *prometheus.CounterVec
}

func newTokenMetrics(reg prometheus.Registerer) *tokenMetrics {
	m := &tokenMetrics{
		refreshes: counterVec(reg, "salesforce", "token_refreshes_total", "OAuth token requests by result (success or error).", "result"),
	}
	m.refreshes.WithLabelValues("success")
	m.refreshes.WithLabelValues("error")
	return m
}

// streamMetrics are the streaming client's metrics (subsystem stream).
type streamMetrics struct {
	events       *prometheus.CounterVec
	rehandshakes *prometheus.CounterVec
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	decodeErrors *prometheus.CounterVec
	gaps         *prometheus.CounterVec
	state        *streamState
}

func newStreamMetrics(reg prometheus.Registerer, channels []string, now func() time.Time) *streamMetrics {
	m := &streamMetrics{
		events: counterVec(reg, "stream", "events_received_total",
			"Streaming API events received and handled, by channel (events skipped as undecodable included; see decode_errors_total).", "channel"),
		rehandshakes: counterVec(reg, "stream", "rehandshakes_total", "Bayeux re-handshakes by reason.", "reason"),
		requests: counterVec(reg, "stream", "requests_total",
			"Bayeux requests by operation (handshake, connect, subscribe, disconnect) and result code.", "operation", "code"),
		duration: histogramVec(reg, "stream", "request_duration_seconds",
			"Latency of Bayeux requests by operation; connects include the long-poll wait.",
			[]float64{0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120}, "operation"),
		decodeErrors: counterVec(reg, "stream", "decode_errors_total",
			"Streaming API events that could not be decoded and were skipped, by channel.", "channel"),
		gaps: counterVec(reg, "stream", "replay_gaps_total",
			"Gaps reported to the handler, by channel: a stored replay id refused (expired or invalid), or a resubscription "+
				"after a lost session from where nothing published meanwhile is replayed.", "channel"),
	}
	m.state = &streamState{now: now, lastEvent: map[string]time.Time{}, lastCommit: map[string]time.Time{}, channels: channels}
	for _, reason := range []string{"unknown_client", "auth", "advice", "transport", "limit"} {
		m.rehandshakes.WithLabelValues(reason)
	}
	for _, ch := range channels {
		m.events.WithLabelValues(ch)
		m.decodeErrors.WithLabelValues(ch)
		m.gaps.WithLabelValues(ch)
	}
	if reg != nil {
		// A second stream on the same registry keeps its own state but
		// cannot expose it twice; the first one wins.
		_ = reg.Register(m.state)
	}
	return m
}

// streamState is a collector that reads the stream's clocks at scrape time.
type streamState struct {
	now        func() time.Time
	mu         sync.Mutex
	channels   []string
	lastEvent  map[string]time.Time
	lastCommit map[string]time.Time
}

var (
	sinceEventDesc = prometheus.NewDesc(namespace+"_stream_seconds_since_last_event",
		"Seconds since the last event was received on the channel (absent before the first one).", []string{"channel"}, nil)
	lastEventDesc = prometheus.NewDesc(namespace+"_stream_last_event_timestamp_seconds",
		"Unix time of the last event received on the channel.", []string{"channel"}, nil)
	replayAgeDesc = prometheus.NewDesc(namespace+"_stream_last_replay_id_age_seconds",
		"Seconds since the channel's replay id was last committed to the checkpoint store (absent before the first commit).", []string{"channel"}, nil)
)

func (s *streamState) Describe(ch chan<- *prometheus.Desc) {
	ch <- sinceEventDesc
	ch <- lastEventDesc
	ch <- replayAgeDesc
}

func (s *streamState) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
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

func (s *streamState) event(channel string) {
	s.mu.Lock()
	s.lastEvent[channel] = s.now()
	s.mu.Unlock()
}

func (s *streamState) committed(channel string) {
	s.mu.Lock()
	s.lastCommit[channel] = s.now()
	s.mu.Unlock()
}
