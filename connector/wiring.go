package connector

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omniroute/omniroute/salesforce"
)

// writerPart is the AgentWork writer as the core runs it.
type writerPart interface {
	CommandSink
	Run(ctx context.Context) error
}

// writerDeps are what the core gives the writer.
type writerDeps struct {
	Client     *salesforce.Client
	Channels   map[string]string // ServiceChannel DeveloperName -> Id
	Report     func(ctx context.Context, r WriteResult) error
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// newWriter builds the AgentWork writer.
var newWriter func(d writerDeps) (writerPart, error)
