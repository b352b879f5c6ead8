package streaming

import (
	"sort"
	"strings"
	"time"
)

// event is one published event. It is shared by every channel it was published on and by
// every client queue it waits in; the wire bytes are encoded once per channel at publish.
type event struct {
	id        int64
	published time.Time
	data      []byte          // the "data" member, for subscription filters
	refs      int             // channel logs still holding the event
	chans     []*channelState // channels the event was published on
}

// delivery is one event message queued for one client on one channel.
type delivery struct {
	ch  *channelState
	id  int64
	msg []byte // {"channel":…,"data":…}
}

// channelState is one channel: its retained events (oldest first) and its subscribers.
type channelState struct {
	name      string
	retention time.Duration
	log       []retained // retained[start:] are live, ordered by id
	start     int
	horizon   int64 // highest replay id dropped from this channel (expired or evicted)
	subs      map[*client][]*subscription
}

type retained struct {
	ev     *event
	msg    []byte
	render func() []byte // nil, or the message rendered again for a replay (PublishMessages)
}

func (c *channelState) live() []retained { return c.log[c.start:] }

// dropHead forgets the oldest retained event of the channel.
func (c *channelState) dropHead() {
	r := c.log[c.start]
	c.log[c.start] = retained{}
	c.start++
	if r.ev.id > c.horizon {
		c.horizon = r.ev.id
	}
	r.ev.refs--
	// Compact once the dead prefix is at least half the slice, so memory follows the live size.
	if c.start >= 64 && c.start*2 >= len(c.log) {
		n := copy(c.log, c.log[c.start:])
		clear(c.log[n:])
		c.log = c.log[:n]
		c.start = 0
	}
}

// pruneBefore drops retained events published before cutoff.
func (c *channelState) pruneBefore(cutoff time.Time) {
	for c.start < len(c.log) && c.log[c.start].ev.published.Before(cutoff) {
		c.dropHead()
	}
}

// after returns the retained events with an id greater than id.
func (c *channelState) after(id int64) []retained {
	l := c.live()
	i := sort.Search(len(l), func(i int) bool { return l[i].ev.id > id })
	return l[i:]
}

// defaultRetention is Salesforce's: 72 h for CDC, platform and custom channels (/data, /event),
// 24 h for PushTopic and generic streaming (/topic, /u) and anything else.
func defaultRetention(channel string) time.Duration {
	if strings.HasPrefix(channel, "/data/") || strings.HasPrefix(channel, "/event/") {
		return 72 * time.Hour
	}
	return 24 * time.Hour
}
