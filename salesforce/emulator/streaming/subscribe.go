// /meta/subscribe and /meta/unsubscribe: channel checks, replay, and per-client queues.

package streaming

import (
	"strings"
	"time"
)

// channelCheck validates a subscription name before Authorize sees it.
func channelCheck(ch string) string {
	switch {
	case ch == "":
		return ErrTextChannelNotSpecified
	case !strings.HasPrefix(ch, "/"):
		return ErrTextLeadingSlash
	case strings.HasPrefix(ch, "/meta/") || ch == "/meta" || strings.HasPrefix(ch, "/service/"):
		return ErrTextRestrictedChannel
	}
	return ""
}

func (s *Server) subscribe(rq *request, m *message) reply {
	c, fail, now := s.lockedLookup(rq, m)
	s.mu.Unlock()
	if fail != nil {
		fail.Subscription = m.Subscription
		return *fail
	}
	rep, subs, ok := subscriptionReply(c, m)
	if !ok {
		return rep
	}
	s.mu.Lock()
	busy := s.takeBusyLocked("subscribe")
	s.mu.Unlock()
	if busy {
		rep.Error = ErrTextTooBusy
		rep.Ext = failureExt(ErrTextTooBusy, false)
		return rep
	}
	rx := m.replay()
	for _, ch := range subs {
		if text := channelCheck(ch); text != "" {
			rep.Error = text
			return rep
		}
		base, filter, valid := parseSubscription(ch)
		if !valid {
			rep.Error = ChannelNotFoundError(ch).Error()
			return rep
		}
		if s.opts.Authorize != nil {
			if err := s.opts.Authorize(c.principal, ch); err != nil {
				rep.Error = err.Error()
				if rep.Error == "" {
					rep.Error = ErrTextNotAllowed
				}
				return rep
			}
		}
		from, text := int64(-1), "-1"
		if rx.present {
			// Keyed by the bare channel, as Salesforce looks it up (jsforce/jsforce#888: a
			// map keyed by the filtered subscription is refused, naming the bare channel).
			raw, found := rx.values[base]
			if !found {
				shown := make(map[string]string, len(rx.values))
				for k, v := range rx.values {
					shown[k] = string(v)
				}
				rep.Error = replayMapMismatch(base, shown)
				return rep
			}
			if from, text, valid = parseReplayValue(raw); !valid {
				rep.Error = invalidReplayID(text)
				return rep
			}
		}
		s.mu.Lock()
		if c.gone {
			s.mu.Unlock()
			return unknownClientReply(m)
		}
		errText := s.subscribeLocked(c, ch, base, filter, from, text, now)
		s.mu.Unlock()
		if errText != "" {
			rep.Error = errText
			return rep
		}
	}
	rep.Successful = true
	return rep
}

// subscribeLocked subscribes c to key (channel ch narrowed by filter) and queues the replayed
// events. Callers hold s.mu.
func (s *Server) subscribeLocked(c *client, key, ch string, filter []fieldFilter, from int64, text string, now time.Time) string {
	st := s.channel(ch)
	st.pruneBefore(now.Add(-st.retention))
	s.cleanFIFO()
	var replay []retained
	switch {
	case from == -1:
	case from == -2:
		replay = st.live()
	case from > 0 && from <= s.lastID && from > st.horizon && from > s.globalHorizon:
		replay = st.after(from)
	default:
		return invalidReplayID(text)
	}
	if old, again := c.subs[key]; again {
		s.removeSub(c, old)
	}
	sub := &subscription{key: key, st: st, filter: filter}
	c.subs[key] = sub
	st.subs[c] = append(st.subs[c], sub)
	for _, r := range replay {
		if filter != nil && !sub.matches(&sobjectFields{data: r.ev.data}) {
			continue
		}
		c.queue = append(c.queue, delivery{ch: st, id: r.ev.id, msg: r.replayMsg()})
	}
	if len(c.queue) > s.opts.MaxQueue {
		s.overflow(c)
		return ErrTextUnknownClient
	}
	if len(c.queue) > 0 && c.poll != nil {
		s.release(c, wakeEvent)
	}
	return ""
}

// removeSub ends one subscription of c. The channel's undelivered events are dropped from c's
// queue once c has no other subscription to that channel. Callers hold s.mu.
func (s *Server) removeSub(c *client, sub *subscription) {
	delete(c.subs, sub.key)
	subs := sub.st.subs[c]
	for i, x := range subs {
		if x == sub {
			subs = append(subs[:i], subs[i+1:]...)
			break
		}
	}
	if len(subs) == 0 {
		delete(sub.st.subs, c)
		c.removeQueued(sub.st)
		return
	}
	sub.st.subs[c] = subs
}

func (c *client) removeQueued(st *channelState) {
	q := c.queue[:0]
	for _, d := range c.queue {
		if d.ch != st {
			q = append(q, d)
		}
	}
	clear(c.queue[len(q):])
	c.queue = q
}

// subscriptionReply starts client c's reply to a subscribe or unsubscribe and returns the
// message's subscriptions; ok is false, with the error in the reply, when it names none.
func subscriptionReply(c *client, m *message) (rep reply, subs []string, ok bool) {
	rep = newReply(m)
	rep.ClientID = c.id
	rep.Subscription = m.Subscription
	subs, ok = m.subscriptions()
	if !ok || len(subs) == 0 {
		rep.Error = ErrTextChannelNotSpecified
		return rep, nil, false
	}
	return rep, subs, true
}

func (s *Server) unsubscribe(rq *request, m *message) reply {
	c, fail, _ := s.lockedLookup(rq, m)
	defer s.mu.Unlock()
	if fail != nil {
		fail.Subscription = m.Subscription
		return *fail
	}
	rep, subs, ok := subscriptionReply(c, m)
	if !ok {
		return rep
	}
	for _, key := range subs {
		if sub, ok := c.subs[key]; ok {
			s.removeSub(c, sub)
		}
	}
	rep.Successful = true
	return rep
}
