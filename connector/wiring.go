package connector

import (
	"context"
	"log/slog"
	"sync/atomic"
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
	// InFlight is the writer's MaxInFlight (OMNIROUTE_WRITER_IN_FLIGHT).
	InFlight int
}

// newWriter builds the AgentWork writer (writer.go).
func newWriter(d writerDeps) (writerPart, error) {
	drain := d.ShutdownTimeout.Duration / 2
	if d.MaxDrain > 0 {
		drain = min(drain, d.MaxDrain)
	}
	o := WriterOptions{Client: d.Client, Report: d.Report, Registerer: d.Registerer, Logger: d.Logger,
		DrainTimeout: drain, MaxInFlight: d.InFlight}
	o.UseOrg(d.Org)
	w, err := NewWriter(o)
	if err != nil {
		return nil, err
	}
	return &drainWatch{writerPart: w, drain: drain}, nil
}

// drainWatch tells whether the writer's drain used its whole allowance: then the writer
// cancelled a call still in flight, whose insert Salesforce may yet carry out, and a leader
// keeps its Lease (errKeepLease) rather than handing it to a standby at once. Measured from
// outside, so the writer is unchanged; a drain that ends just at its limit counts as cut,
// which only makes the handover wait for the Lease to expire.
type drainWatch struct {
	writerPart
	drain time.Duration
	cut   atomic.Bool
}

// Run runs the writer and notes whether its drain was cut.
func (w *drainWatch) Run(ctx context.Context) error {
	stopped := make(chan time.Time, 1)
	defer context.AfterFunc(ctx, func() { stopped <- time.Now() })()
	err := w.writerPart.Run(ctx)
	select {
	case at := <-stopped:
		w.cut.Store(time.Since(at) >= w.drain)
	default: // the writer returned before its context ended
	}
	return err
}

// Cut says whether the last drain was cut.
func (w *drainWatch) Cut() bool { return w.cut.Load() }
