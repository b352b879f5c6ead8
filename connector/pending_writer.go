package connector

import "github.com/omniroute/omniroute/routing"

// This file holds the writer's result type until branch writer is merged (its writer.go
// defines it); it is deleted then.

// WriteResult is what the writer reports for a command: the AgentWork it created (or found on
// look-up) and, when the engine must learn something (an insert refused, an offer checked),
// the Event.
type WriteResult struct {
	Command     routing.Command
	AgentWorkID string
	Event       *routing.Event
}
