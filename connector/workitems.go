package connector

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/omniroute/omniroute/salesforce"
)

// DispositionWrite is a session's disposition to write to one work item: Field (the mapping's
// channels[].dispositionField) of SObject ID.
type DispositionWrite struct {
	SObject, ID, Field, Value string
}

// WorkItemSink writes to work items for the router. Disposition enqueues and never blocks.
type WorkItemSink interface {
	Disposition(w DispositionWrite)
}

// workItemQueue bounds the writes waiting; beyond it a write is dropped, counted and logged.
const workItemQueue = 1024

// WorkItems writes sessions' dispositions to their work items with a REST PATCH
// (salesforce.Client.Update, which retries what Salesforce says may be retried), one at a
// time, off the router's goroutine.
type WorkItems struct {
	client *salesforce.Client
	log    *slog.Logger
	queue  chan DispositionWrite
	writes *prometheus.CounterVec
}

// NewWorkItems builds the work item writer; Run carries out the writes.
func NewWorkItems(client *salesforce.Client, reg prometheus.Registerer, log *slog.Logger) *WorkItems {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &WorkItems{
		client: client, log: log.With("component", "workitems"), queue: make(chan DispositionWrite, workItemQueue),
		writes: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{Subsystem: "workitems", Name: "disposition_writes_total",
			Help: "Dispositions written to work items, by result: ok, failed, dropped (queue full)."}, []string{"result"}),
	}
}

// Disposition implements WorkItemSink.
func (w *WorkItems) Disposition(d DispositionWrite) {
	select {
	case w.queue <- d:
	default:
		w.writes.WithLabelValues("dropped").Inc()
		w.log.Warn("disposition not written: the queue is full", "sobject", d.SObject, "work", d.ID)
	}
}

// Run writes until ctx ends.
func (w *WorkItems) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case d := <-w.queue:
			w.write(ctx, d)
		}
	}
}

func (w *WorkItems) write(ctx context.Context, d DispositionWrite) {
	if err := w.client.Update(ctx, d.SObject, d.ID, map[string]any{d.Field: d.Value}); err != nil {
		w.writes.WithLabelValues("failed").Inc()
		w.log.Warn("disposition not written", "sobject", d.SObject, "work", d.ID, "field", d.Field, "err", err)
		return
	}
	w.writes.WithLabelValues("ok").Inc()
}
