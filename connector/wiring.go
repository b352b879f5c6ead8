package connector

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/salesforce"
)

// writerPart is the AgentWork writer as the core runs it.
type writerPart interface {
	CommandSink
	Run(ctx context.Context) error
}

// writerDeps are what the core gives the writer.
type writerDeps struct {
	Client          *salesforce.Client
	Org             mapping.Org
	Report          func(ctx context.Context, r WriteResult) error
	Registerer      prometheus.Registerer
	Logger          *slog.Logger
	ShutdownTimeout Duration
	// MaxDrain, when set, caps the writer's drain (half the shutdown timeout): a leader that
	// lost its lease must be done before a standby may take it over (leader.go).
	MaxDrain time.Duration
}

// newWriter builds the AgentWork writer (writer.go).
func newWriter(d writerDeps) (writerPart, error) {
	drain := d.ShutdownTimeout.Duration / 2
	if d.MaxDrain > 0 {
		drain = min(drain, d.MaxDrain)
	}
	o := WriterOptions{Client: d.Client, Report: d.Report, Registerer: d.Registerer, Logger: d.Logger,
		DrainTimeout: drain}
	o.UseOrg(d.Org)
	return NewWriter(o)
}
