package connector

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// routerMetrics are the router's metrics (omniroute_routing_*, omniroute_router_*,
// omniroute_reconcile_*). Labels are bounded: plans, queues and reasons come from the
// mapping and the routing package, never work or user ids.
type routerMetrics struct {
	outcomes       *prometheus.CounterVec
	commands       *prometheus.CounterVec
	depth          *prometheus.GaugeVec
	oldest         *prometheus.GaugeVec
	offerToAccept  prometheus.Histogram
	eventToRequest prometheus.Histogram
	events         *prometheus.CounterVec
	gaps           *prometheus.CounterVec
	lag            prometheus.Histogram
	reconciles     prometheus.Counter
	reconcileTime  prometheus.Histogram
	reloads        prometheus.Counter
	presenceSync   *prometheus.CounterVec
	agentInputs    *prometheus.CounterVec
}

var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newRouterMetrics(reg prometheus.Registerer) *routerMetrics {
	f := promauto.With(reg)
	m := &routerMetrics{
		outcomes: f.NewCounterVec(prometheus.CounterOpts{Subsystem: "routing", Name: "outcomes_total",
			Help: "Routing outcomes by plan: offered, rerouted_<reason>."}, []string{"plan", "outcome"}),
		commands: f.NewCounterVec(prometheus.CounterOpts{Subsystem: "routing", Name: "commands_total",
			Help: "Commands the engine issued, by type and reason."}, []string{"command", "reason"}),
		depth: f.NewGaugeVec(prometheus.GaugeOpts{Subsystem: "routing", Name: "queue_depth",
			Help: "Work waiting to be offered, by queue."}, []string{"queue"}),
		oldest: f.NewGaugeVec(prometheus.GaugeOpts{Subsystem: "routing", Name: "queue_oldest_age_seconds",
			Help: "Age of the oldest waiting work, by queue."}, []string{"queue"}),
		offerToAccept: f.NewHistogram(prometheus.HistogramOpts{Subsystem: "routing", Name: "offer_to_accept_seconds",
			Help: "From the AgentWork request to the agent's accept.", Buckets: latencyBuckets}),
		eventToRequest: f.NewHistogram(prometheus.HistogramOpts{Subsystem: "routing", Name: "event_to_agentwork_request_seconds",
			Help: "From the event that made work routable to the AgentWork request handed to the writer.", Buckets: latencyBuckets}),
		events: f.NewCounterVec(prometheus.CounterOpts{Subsystem: "router", Name: "events_total",
			Help: "Stream events the router handled, by result (applied, a skip reason, gap, bad...)."}, []string{"result"}),
		gaps: f.NewCounterVec(prometheus.CounterOpts{Subsystem: "router", Name: "gaps_total",
			Help: "Reasons to reconcile the router met: missed (replay refused, resubscribed), gap_event."}, []string{"cause"}),
		lag: f.NewHistogram(prometheus.HistogramOpts{Subsystem: "router", Name: "event_lag_seconds",
			Help: "From the change's commit in Salesforce to the router taking its event.", Buckets: latencyBuckets}),
		reconciles: f.NewCounter(prometheus.CounterOpts{Subsystem: "reconcile", Name: "applied_total",
			Help: "Reconcile snapshots applied."}),
		reconcileTime: f.NewHistogram(prometheus.HistogramOpts{Subsystem: "reconcile", Name: "duration_seconds",
			Help: "How long a reconcile's SOQL reads took.", Buckets: latencyBuckets}),
		reloads: f.NewCounter(prometheus.CounterOpts{Subsystem: "router", Name: "mapping_reloads_applied_total",
			Help: "Mapping reloads the router applied to the engine."}),
		presenceSync: f.NewCounterVec(prometheus.CounterOpts{Subsystem: "presence", Name: "sync_total",
			Help: "Presence changes: direction to_salesforce (console commands) or from_salesforce (events, console reports); result ok, failed or suppressed (echo, older than a push, already shown)."},
			[]string{"direction", "result"}),
		agentInputs: f.NewCounterVec(prometheus.CounterOpts{Subsystem: "router", Name: "agent_inputs_total",
			Help: "Inputs from agents' consoles the router applied: agent_state, agent_action, report, refused."}, []string{"kind"}),
	}
	// Every presence sync series exists from the start, so dashboards and rates see zeros.
	for _, r := range []string{syncOK, syncFailed, syncSuppressed} {
		m.presenceSync.WithLabelValues(syncToSalesforce, r)
		m.presenceSync.WithLabelValues(syncFromSalesforce, r)
	}
	return m
}
