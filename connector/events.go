package connector

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/omniroute/omniroute/salesforce"
)

// Per-entity CDC channels of OMNIROUTE_EVENTS=entities.
var entityChannels = []string{
	"/data/PendingServiceRoutingChangeEvent",
	"/data/AgentWorkChangeEvent",
	"/data/UserServicePresenceChangeEvent",
}

// pushTopic is a PushTopic OMNIROUTE_EVENTS=pushtopic subscribes to (and creates when
// missing).
type pushTopic struct {
	Name, Entity, Query string
}

// pushTopics select what Translate reads; NotifyForFields All makes every change fire.
var pushTopics = []pushTopic{
	{"OmnirouteRouting", "PendingServiceRouting", "SELECT Id, WorkItemId, QueueId, GroupId, ServiceChannelId, RoutingModel, RoutingType, " +
		"IsReadyForRouting, IsPushed, IsTransfer, CapacityWeight, RoutingPriority, PreferredUserId, IsPreferredUserRequired, " +
		"CustomRequestedDateTime, CreatedDate FROM PendingServiceRouting WHERE RoutingModel = 'ExternalRouting'"},
	{"OmnirouteAgentWork", "AgentWork", "SELECT Id, Status, UserId, WorkItemId, ServiceChannelId, PendingServiceRoutingId, RoutingModel FROM AgentWork"},
	{"OmniroutePresence", "UserServicePresence", "SELECT Id, UserId, ServicePresenceStatusId, IsCurrentState FROM UserServicePresence"},
}

// streamChannels returns the channels of the events mode and, for PushTopics, the entity of
// each topic.
func streamChannels(cfg Config) (channels []string, topics map[string]string) {
	switch cfg.Events {
	case EventsEntities:
		return entityChannels, nil
	case EventsPushTopic:
		topics = map[string]string{}
		for _, t := range pushTopics {
			ch := "/topic/" + t.Name
			channels = append(channels, ch)
			topics[ch] = t.Entity
		}
		return channels, topics
	default:
		return []string{cfg.CDCChannel}, nil
	}
}

// EnsurePushTopics creates the PushTopics of OMNIROUTE_EVENTS=pushtopic that the org lacks.
func EnsurePushTopics(ctx context.Context, c *salesforce.Client) error {
	version, err := strconv.ParseFloat(c.APIVersion(), 64)
	if err != nil {
		return fmt.Errorf("create PushTopics: API version %q: %w", c.APIVersion(), err)
	}
	have := map[string]bool{}
	type row struct {
		Name string `json:"Name"`
	}
	for r, err := range salesforce.QueryAs[row](ctx, c, "SELECT Name FROM PushTopic") {
		if err != nil {
			return fmt.Errorf("read PushTopics: %w", err)
		}
		have[r.Name] = true
	}
	for _, t := range pushTopics {
		if have[t.Name] {
			continue
		}
		_, err = c.Create(ctx, "PushTopic", map[string]any{
			"Name": t.Name, "Query": t.Query, "ApiVersion": version, "NotifyForFields": "All",
			"NotifyForOperationCreate": true, "NotifyForOperationUpdate": true, "NotifyForOperationDelete": true,
		})
		if err != nil {
			return fmt.Errorf("create PushTopic %s: %w", t.Name, err)
		}
	}
	return nil
}

// streamHTTPClient is the HTTP client of the stream: the daemon's, without a timeout shorter
// than a long poll.
func streamHTTPClient(c *http.Client) *http.Client {
	if c == nil {
		return &http.Client{}
	}
	sc := *c
	if sc.Timeout != 0 && sc.Timeout < 3*time.Minute {
		sc.Timeout = 0 // the stream bounds each long poll itself
	}
	return &sc
}

// committer commits replay ids off the router's goroutine: the newest id per channel wins,
// and commits are made in order by one goroutine.
type committer struct {
	stream *salesforce.Stream
	mu     sync.Mutex
	next   map[string]int64
	wake   chan struct{}
}

func newCommitter(s *salesforce.Stream) *committer {
	return &committer{stream: s, next: map[string]int64{}, wake: make(chan struct{}, 1)}
}

// Commit records id as committable; it never blocks.
func (c *committer) Commit(channel string, id int64) {
	c.mu.Lock()
	if id > c.next[channel] {
		c.next[channel] = id
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// flush commits what is pending.
func (c *committer) flush(ctx context.Context) error {
	c.mu.Lock()
	next := c.next
	c.next = map[string]int64{}
	c.mu.Unlock()
	for ch, id := range next {
		if err := c.stream.Commit(ctx, ch, id); err != nil {
			return fmt.Errorf("commit replay id %d of %s: %w", id, ch, err)
		}
	}
	return nil
}

// Run commits until ctx ends.
func (c *committer) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
			if err := c.flush(ctx); err != nil {
				return err
			}
		}
	}
}
