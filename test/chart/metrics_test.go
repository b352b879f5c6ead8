package chart

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/omniroute/omniroute/connector"
	"github.com/omniroute/omniroute/salesforce"
)

// reservedNotRegistered are metric names reserved in connector/agents.go for code being written
// in parallel (the agent gateway, presence sync, leader election) that the dashboard and the
// alerts already use. Each must appear in that comment and must not be registered yet: once
// the code is merged the test fails until the name is removed here, and then the name must be
// registered for real.
var reservedNotRegistered []string

// daemonMetrics builds the daemon's registry as the daemon does: connector.New registers the
// process and Go collectors, build_info, the router, mapping, HTTP and Salesforce client
// metrics; Run's core then adds the stream (salesforce.NewStream) and the AgentWork writer
// (connector.NewWriter) on the same registerer under connector.MetricsPrefix, which is done
// here with the same options. No request is made.
func daemonMetrics(t *testing.T) *metricSet {
	t.Helper()
	cfg := connector.DefaultConfig()
	cfg.MappingFile = filepath.Join(root, "docs", "examples", "mapping.yaml")
	cfg.Salesforce.ClientID = "3MVG9example"
	cfg.Salesforce.ClientSecret = connector.NewSecret("consumer-secret")
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })

	reg := prometheus.NewRegistry()
	_, err = connector.New(connector.Options{Config: cfg, Registry: reg, Listener: ln, Version: "test"})
	require.NoError(t, err)
	prefixed := prometheus.WrapRegistererWithPrefix(connector.MetricsPrefix, reg)
	sf, err := connector.NewSalesforce(cfg.Salesforce, connector.SalesforceOptions{}) // its metrics are New's
	require.NoError(t, err)
	_, err = salesforce.NewStream(salesforce.StreamOptions{Tokens: sf.Tokens, Channels: []string{cfg.CDCChannel}, Registerer: prefixed})
	require.NoError(t, err)
	_, err = connector.NewWriter(connector.WriterOptions{
		Client: sf.Client, Channels: map[string]string{"Chat": "0N9000000000001"},
		Report: func(context.Context, connector.WriteResult) error { return nil }, Registerer: prefixed,
	})
	require.NoError(t, err)

	families, err := reg.Gather()
	require.NoError(t, err)
	s := &metricSet{reg: reg, types: map[string]dto.MetricType{}}
	for _, f := range families {
		s.types[f.GetName()] = f.GetType()
	}
	return s
}

// metricSet answers whether a series name exists in the daemon's registry.
type metricSet struct {
	reg *prometheus.Registry
	// types are the families the registry gathers: those with at least one series. A vector
	// without a child yet is not gathered; registered tells about those.
	types map[string]dto.MetricType
}

// has reports whether name is a series name of the registry: a gathered family, a histogram's
// _bucket, _sum or _count, or a registered metric whose vector has no child yet.
func (s *metricSet) has(name string) (bool, string) {
	if _, ok := s.types[name]; ok {
		return true, ""
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if typ, ok := s.types[base]; ok {
			if typ == dto.MetricType_HISTOGRAM || (suffix != "_bucket" && typ == dto.MetricType_SUMMARY) {
				return true, ""
			}
			return false, base + " is a " + typ.String() + ", which has no " + suffix + " series"
		}
		if s.registered(base) {
			return false, base + " is registered but has no series yet, so its type cannot be checked: use it unsuffixed"
		}
	}
	if s.registered(name) {
		return true, ""
	}
	return false, "not registered"
}

// registered tells whether a metric of that name is registered, by registering a probe of the
// same name: the registry refuses it when the name is taken (whatever its labels or help). The
// probe is removed when it was accepted.
func (s *metricSet) registered(name string) bool {
	p := probe{prometheus.NewDesc(name, "chart test probe", nil, nil)}
	if err := s.reg.Register(p); err != nil {
		return true
	}
	s.reg.Unregister(p)
	return false
}

type probe struct{ d *prometheus.Desc }

func (p probe) Describe(ch chan<- *prometheus.Desc) { ch <- p.d }
func (p probe) Collect(chan<- prometheus.Metric)    {}

// queries are the PromQL expressions of the chart: every alert of the HA values (all alerts
// on) and every dashboard panel's target, each named for the failure messages.
func queries(t *testing.T) map[string]string {
	t.Helper()
	ms := renderDecode(t, "ha-values.yaml")
	out := map[string]string{}
	rules := one[*prometheusRule](t, ms)
	for _, g := range rules.Spec.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	for _, m := range ms {
		if cm, ok := m.Obj.(*corev1.ConfigMap); ok && strings.HasSuffix(cm.Name, "-dashboard") {
			require.NoError(t, json.Unmarshal([]byte(cm.Data["omniroute.json"]), &dash))
		}
	}
	require.NotEmpty(t, dash.Panels, "the dashboard has panels")
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out["panel "+p.Title+" "+tg.RefID] = tg.Expr
		}
	}
	return out
}

// TestAlertsAndDashboardMetrics: every expression parses as PromQL, and every metric it
// selects is registered by the daemon, or reserved for code not merged yet.
func TestAlertsAndDashboardMetrics(t *testing.T) {
	t.Parallel()
	reserved := reservedInAgentsGo(t)
	for _, name := range reservedNotRegistered {
		require.Truef(t, slices.ContainsFunc(reserved, func(r string) bool { return r == name }),
			"%s is in reservedNotRegistered but not among the names connector/agents.go reserves %v", name, reserved)
	}
	metrics := daemonMetrics(t)
	for _, name := range reservedNotRegistered {
		ok, _ := metrics.has(name)
		require.Falsef(t, ok, "%s is registered now: remove it from reservedNotRegistered", name)
	}

	p := parser.NewParser(parser.Options{})
	used := map[string]bool{}
	alerts := 0
	for where, q := range queries(t) {
		if strings.HasPrefix(where, "alert ") {
			alerts++
		}
		expr, err := p.ParseExpr(q)
		require.NoErrorf(t, err, "%s: %s", where, q)
		names := selectedMetrics(expr)
		require.NotEmptyf(t, names, "%s selects no metric: %s", where, q)
		for _, n := range names {
			used[n] = true
			if slices.Contains(reservedNotRegistered, n) {
				continue
			}
			ok, why := metrics.has(n)
			require.Truef(t, ok, "%s uses %s: %s (the daemon's metrics: docs/operations.md, connector/metrics.go)", where, n, why)
		}
	}
	require.Equal(t, 7, alerts, "the seven alerts of docs/operations.md")
	for _, n := range reservedNotRegistered {
		require.Truef(t, used[n], "%s is reserved here but nothing uses it", n)
	}
}

// selectedMetrics returns the metric names an expression selects.
func selectedMetrics(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	slices.Sort(out)
	return slices.Compact(out)
}

var reservedRe = regexp.MustCompile(`(?m)^//\s+(omniroute_[a-z_]+)`)

// reservedInAgentsGo reads the metric names reserved in the comment of connector/agents.go.
// omniroute_gateway_*_total names are listed one by one there.
func reservedInAgentsGo(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, "connector", "agents.go"))
	require.NoError(t, err)
	var out []string
	for _, m := range reservedRe.FindAllSubmatch(src, -1) {
		out = append(out, string(m[1]))
	}
	require.NotEmpty(t, out, "connector/agents.go lists the reserved metric names")
	return out
}

// TestMetricSet: the registry check itself tells registered names, histogram series and
// unknown names apart, so that a typo in an alert cannot pass.
func TestMetricSet(t *testing.T) {
	t.Parallel()
	m := daemonMetrics(t)
	tests := []struct {
		name string
		want bool
	}{
		{"omniroute_build_info", true},
		{"omniroute_routing_offer_to_accept_seconds_bucket", true},
		{"omniroute_routing_offer_to_accept_seconds_count", true},
		{"omniroute_writer_errors_total", true}, // a vector with no child yet
		{"omniroute_stream_live", true},
		{"omniroute_routing_queue_depth_bucket", false}, // a gauge has no buckets
		{"omniroute_routing_offer_to_accept", false},
		{"omniroute_writer_error_total", false},
		{"omniroute_leader", true},
	}
	for _, tc := range tests {
		ok, why := m.has(tc.name)
		require.Equalf(t, tc.want, ok, "%s: %s", tc.name, why)
	}
	require.False(t, m.registered("omniroute_no_such_metric"))
	require.False(t, m.registered("omniroute_no_such_metric"), "a probe leaves nothing behind")
}

// TestAlertsWithoutSeries: a series the daemon has not created (a counter vector's child
// appears with its first event) or cannot export (no pod runs) must not silence an alert.
//   - A "nothing happened" condition joined by `and` (sum(increase(x)) == 0) must read missing
//     series as zero (`or vector(0)`): with no series the `and` drops the whole alert, so a
//     daemon that never offered anything would never be found stalled.
//   - The alerts saying that no replica does something fire also when no replica exports the
//     metric (absent()): a crash-looping pod exports nothing.
func TestAlertsWithoutSeries(t *testing.T) {
	t.Parallel()
	absentFor := map[string]string{
		"alert OmnirouteStreamDisconnected": "omniroute_stream_live",
		"alert OmnirouteNoLeader":           "omniroute_leader",
	}
	p := parser.NewParser(parser.Options{})
	for where, q := range queries(t) {
		if !strings.HasPrefix(where, "alert ") {
			continue
		}
		expr, err := p.ParseExpr(q)
		require.NoErrorf(t, err, "%s: %s", where, q)
		for _, bad := range unguardedNothingHappened(expr) {
			t.Errorf("%s: %s is empty while the series does not exist, which silences the `and`: write (%s or vector(0)) == 0", where, bad, bad)
		}
		if metric, ok := absentFor[where]; ok {
			require.Truef(t, hasAbsent(expr, metric), "%s fires only while some replica exports %s: add `or absent(%s{...})`", where, metric, metric)
		}
	}
}

func unparen(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// unguardedNothingHappened returns the operands of `and` of the form x == 0 whose x is not
// `... or vector(0)`.
func unguardedNothingHappened(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		and, ok := n.(*parser.BinaryExpr)
		if !ok || and.Op != parser.LAND {
			return nil
		}
		for _, side := range []parser.Expr{and.LHS, and.RHS} {
			cmp, ok := unparen(side).(*parser.BinaryExpr)
			if !ok || cmp.Op != parser.EQLC {
				continue
			}
			if n, ok := unparen(cmp.RHS).(*parser.NumberLiteral); !ok || n.Val != 0 {
				continue
			}
			if or, ok := unparen(cmp.LHS).(*parser.BinaryExpr); ok && or.Op == parser.LOR {
				if c, ok := unparen(or.RHS).(*parser.Call); ok && c.Func.Name == "vector" {
					continue
				}
			}
			out = append(out, cmp.LHS.String())
		}
		return nil
	})
	return out
}

// hasAbsent reports whether expr calls absent() on a selector of metric.
func hasAbsent(expr parser.Expr, metric string) bool {
	found := false
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if c, ok := n.(*parser.Call); ok && c.Func.Name == "absent" && len(c.Args) == 1 {
			if vs, ok := unparen(c.Args[0]).(*parser.VectorSelector); ok && vs.Name == metric {
				found = true
			}
		}
		return nil
	})
	return found
}

// TestAPIUsageIgnoresStandbys: a standby makes no Salesforce call after its start-up, so its
// omniroute_salesforce_api_requests_used keeps the org's usage of that moment for as long as it
// stands by. Every alert and panel reading it drops the replicas that are standbys
// (`unless on (instance) (omniroute_leader == 0)`), or a standby started at a busy hour would
// hold OmnirouteAPIAllocationHigh on for days. Without leader election omniroute_leader is 1 or
// absent, and nothing is dropped.
func TestAPIUsageIgnoresStandbys(t *testing.T) {
	t.Parallel()
	p := parser.NewParser(parser.Options{})
	checked := 0
	for where, q := range queries(t) {
		expr, err := p.ParseExpr(q)
		require.NoErrorf(t, err, "%s: %s", where, q)
		if !slices.Contains(selectedMetrics(expr), "omniroute_salesforce_api_requests_used") {
			continue
		}
		checked++
		require.Truef(t, dropsStandbys(expr), "%s reads a standby's stale API usage: add `unless on (instance) (omniroute_leader{...} == 0)`: %s", where, q)
	}
	require.GreaterOrEqual(t, checked, 2, "the API allocation alert and the API budget panel")
}

// dropsStandbys reports whether expr has an `x unless on (instance) (omniroute_leader == 0)`.
func dropsStandbys(expr parser.Expr) bool {
	found := false
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		b, ok := n.(*parser.BinaryExpr)
		if !ok || b.Op != parser.LUNLESS || b.VectorMatching == nil || !b.VectorMatching.On ||
			!slices.Equal(b.VectorMatching.MatchingLabels, []string{"instance"}) {
			return nil
		}
		cmp, ok := unparen(b.RHS).(*parser.BinaryExpr)
		if !ok || cmp.Op != parser.EQLC {
			return nil
		}
		vs, ok := unparen(cmp.LHS).(*parser.VectorSelector)
		n0, ok0 := unparen(cmp.RHS).(*parser.NumberLiteral)
		found = found || (ok && ok0 && vs.Name == "omniroute_leader" && n0.Val == 0)
		return nil
	})
	return found
}

// TestEventLagThresholdWithinBuckets: histogram_quantile never answers more than the largest
// finite bucket of omniroute_router_event_lag_seconds, so OmnirouteEventLag with a threshold at
// or above it could never fire: the schema refuses such a threshold.
func TestEventLagThresholdWithinBuckets(t *testing.T) {
	t.Parallel()
	families, err := daemonMetrics(t).reg.Gather()
	require.NoError(t, err)
	var top float64
	for _, f := range families {
		if f.GetName() == "omniroute_router_event_lag_seconds" {
			for _, b := range f.GetMetric()[0].GetHistogram().GetBucket() {
				top = max(top, b.GetUpperBound())
			}
		}
	}
	require.Positive(t, top, "omniroute_router_event_lag_seconds has buckets")

	var schema struct {
		Properties struct {
			PrometheusRule struct {
				Properties struct {
					EventLagSeconds struct {
						ExclusiveMaximum *float64 `json:"exclusiveMaximum"`
					} `json:"eventLagSeconds"`
				} `json:"properties"`
			} `json:"prometheusRule"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(readChartFile(t, "values.schema.json"), &schema))
	got := schema.Properties.PrometheusRule.Properties.EventLagSeconds.ExclusiveMaximum
	require.NotNil(t, got, "values.schema.json bounds prometheusRule.eventLagSeconds below %v s, the largest bucket", top)
	require.InDelta(t, top, *got, 0, "prometheusRule.eventLagSeconds' exclusiveMaximum is the largest bucket")
}
