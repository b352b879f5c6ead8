package connector

import (
	"context"
	"log/slog"

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
}

// newWriter builds the AgentWork writer (writer.go).
func newWriter(d writerDeps) (writerPart, error) {
	o := WriterOptions{Client: d.Client, Report: d.Report, Registerer: d.Registerer, Logger: d.Logger,
		DrainTimeout: d.ShutdownTimeout.Duration / 2}
	o.UseOrg(d.Org)
	return NewWriter(o)
}
