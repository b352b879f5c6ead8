package connector

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/omniroute/omniroute/salesforce"
)

// readRequest is a read the router needs before it can apply an event: PSRs to read whole
// with their SkillRequirement rows, or an AgentWork it does not know.
type readRequest struct {
	psrs   []string
	create bool
	// agentWork is the AgentWork to read for event.
	agentWork string
	event     *salesforce.ChangeEvent
	// external: the AgentWork is not one of ours (translate asked for its user and work).
	external bool
	mark     *replayMark
	// check: the light check of the PSRs Salesforce still has, for the router's sequence
	// number seq.
	check bool
	seq   uint64
	ext   []string
	// openOf: read the open AgentWork of this work item.
	openOf string
}

// readAnswer is what a read found.
type readAnswer struct {
	req       readRequest
	psrs      []salesforce.PendingServiceRouting
	skills    []salesforce.SkillRequirement
	gone      []string // PSRs asked for that no longer exist
	agentWork *salesforce.AgentWork
	open      []salesforce.AgentWork
	err       error
}

// lightCheck is the answer of the light check: the PSR ids Salesforce has.
type lightCheck struct {
	seq uint64
	ids map[string]bool
	// external says, for each AgentWork asked about, whether it is still open.
	external map[string]bool
	err      error
}

// Reader makes the reads the router asks for (a sink: it answers through the inbox). Requests
// queue without bound so that the router never blocks on it; they are served in order by one
// goroutine, so answers arrive in the order they were asked.
type Reader struct {
	client *salesforce.Client
	router *Router

	mu    sync.Mutex
	queue []readRequest
	wake  chan struct{}
}

// NewReader returns a reader for c; Bind gives it the router.
func NewReader(c *salesforce.Client) *Reader {
	return &Reader{client: c, wake: make(chan struct{}, 1)}
}

// Bind sets the router the answers go to.
func (rd *Reader) Bind(r *Router) { rd.router = r }

// Read queues a read; it never blocks.
func (rd *Reader) Read(req readRequest) {
	rd.mu.Lock()
	rd.queue = append(rd.queue, req)
	rd.mu.Unlock()
	select {
	case rd.wake <- struct{}{}:
	default:
	}
}

// Check queues the light check of waiting PSRs.
// external lists AgentWork Salesforce routed that the engine counts: which are still open.
func (rd *Reader) Check(seq uint64, external []string) {
	rd.Read(readRequest{check: true, seq: seq, ext: external})
}

// Run serves the queue until ctx ends.
func (rd *Reader) Run(ctx context.Context) error {
	for {
		rd.mu.Lock()
		var req readRequest
		ok := len(rd.queue) > 0
		if ok {
			req = rd.queue[0]
			rd.queue[0] = readRequest{}
			rd.queue = rd.queue[1:]
		}
		rd.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-rd.wake:
			}
			continue
		}
		var m inMsg
		if req.check {
			m = inMsg{kind: msgCheck, check: rd.check(ctx, req.seq, req.ext)}
		} else {
			m = inMsg{kind: msgRead, read: rd.read(ctx, req)}
		}
		if err := rd.router.send(ctx, m); err != nil {
			return nil
		}
	}
}

func (rd *Reader) read(ctx context.Context, req readRequest) *readAnswer {
	a := &readAnswer{req: req}
	if req.agentWork != "" {
		var aw salesforce.AgentWork
		err := rd.client.Get(ctx, "AgentWork", req.agentWork, nil, &aw)
		switch {
		case salesforce.IsNotFound(err):
		case err != nil:
			a.err = fmt.Errorf("read AgentWork %s: %w", req.agentWork, err)
		default:
			a.agentWork = &aw
		}
		return a
	}
	if req.openOf != "" {
		ids := soqlIDs([]string{req.openOf})
		if ids == "" {
			return a
		}
		for aw, err := range salesforce.QueryAs[salesforce.AgentWork](ctx, rd.client,
			"SELECT "+salesforce.AgentWorkFields+" FROM AgentWork WHERE WorkItemId IN ("+ids+") AND Status IN ('Assigned', 'Opened')") {
			if err != nil {
				a.err = fmt.Errorf("read the open AgentWork of %s: %w", req.openOf, err)
				return a
			}
			a.open = append(a.open, aw)
		}
		return a
	}
	ids := soqlIDs(req.psrs)
	if ids == "" {
		return a
	}
	found := map[string]bool{}
	for p, err := range salesforce.QueryAs[salesforce.PendingServiceRouting](ctx, rd.client,
		"SELECT "+salesforce.PendingServiceRoutingFields+" FROM PendingServiceRouting WHERE Id IN ("+ids+")") {
		if err != nil {
			a.err = fmt.Errorf("read PendingServiceRouting: %w", err)
			return a
		}
		found[p.ID] = true
		a.psrs = append(a.psrs, p)
	}
	for _, id := range req.psrs {
		if !found[id] {
			a.gone = append(a.gone, id)
		}
	}
	if len(a.psrs) == 0 {
		return a
	}
	for s, err := range salesforce.QueryAs[salesforce.SkillRequirement](ctx, rd.client,
		"SELECT "+salesforce.SkillRequirementFields+" FROM SkillRequirement WHERE RelatedRecordId IN ("+ids+")") {
		if err != nil {
			a.err = fmt.Errorf("read SkillRequirement: %w", err)
			return a
		}
		a.skills = append(a.skills, s)
	}
	return a
}

// check reads the ids of every external-routing PSR Salesforce has: one cheap query.
func (rd *Reader) check(ctx context.Context, seq uint64, external []string) *lightCheck {
	c := &lightCheck{seq: seq, ids: map[string]bool{}, external: map[string]bool{}}
	for p, err := range salesforce.QueryAs[salesforce.PendingServiceRouting](ctx, rd.client,
		"SELECT Id FROM PendingServiceRouting WHERE RoutingModel = 'ExternalRouting'") {
		if err != nil {
			c.err = err
			return c
		}
		c.ids[p.ID] = true
	}
	for chunk := range slices.Chunk(external, 200) {
		ids := soqlIDs(chunk)
		if ids == "" {
			continue
		}
		for _, id := range chunk {
			c.external[id] = false
		}
		for aw, err := range salesforce.QueryAs[salesforce.AgentWork](ctx, rd.client,
			"SELECT Id, Status FROM AgentWork WHERE Id IN ("+ids+")") {
			if err != nil {
				c.err = err
				return c
			}
			c.external[aw.ID] = aw.Status == salesforce.AgentWorkAssigned || aw.Status == salesforce.AgentWorkOpened
		}
	}
	return c
}

// soqlIDs writes the well-formed ids of ids as a SOQL IN list ("" if none): ids come from
// events, and nothing else may reach a query.
func soqlIDs(ids []string) string {
	var ok []string
	for _, id := range ids {
		if salesforceID(id) {
			ok = append(ok, id)
		}
	}
	if len(ok) == 0 {
		return ""
	}
	return quoteIDs(ok)
}
