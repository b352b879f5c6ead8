// /meta/connect: validation, the long poll, and the reply with queued events.

package streaming

import (
	"net/http"
	"time"
)

type wakeReason int

const (
	wakeNone wakeReason = iota
	wakeEvent
	wakeSuperseded
	wakeDropped
	wakeDisconnected
	wakeClosed
	wakeRevalidate
	wakeLimit
)

type poll struct {
	done    chan struct{}
	reason  wakeReason
	browser string
	counted bool // still counted in s.browsers
}

// release answers c's held connect now, if it has one. Callers hold s.mu.
func (s *Server) release(c *client, r wakeReason) {
	p := c.poll
	if p == nil {
		return
	}
	c.poll = nil
	s.uncount(p)
	if p.reason == wakeNone {
		p.reason = r
		close(p.done)
	}
}

// uncount removes p from its browser's count of held connects. Callers hold s.mu.
func (s *Server) uncount(p *poll) {
	if !p.counted {
		return
	}
	p.counted = false
	if s.browsers[p.browser]--; s.browsers[p.browser] <= 0 {
		delete(s.browsers, p.browser)
	}
}

// connectCheck validates a /meta/connect before it is held. ok means the connect is valid and
// connect must answer it.
func (s *Server) connectCheck(rq *request, m *message) (reply, bool) {
	c, fail, _ := s.lockedLookup(rq, m)
	defer s.mu.Unlock()
	if fail != nil {
		return *fail, false
	}
	if m.ConnectionType != connectionLongPolling {
		rep := newReply(m)
		rep.ClientID = c.id
		rep.Error = invalidConnectionType(m.ConnectionType)
		rep.Advice = &advice{Reconnect: "none", Interval: ms(0)}
		return rep, false
	}
	if c.poll != nil {
		s.release(c, wakeSuperseded)
	}
	if s.takeBusyLocked("connect") {
		// The stricter reading: the session does not survive; the client must back off
		// and handshake again.
		s.dropClient(c, wakeDropped)
		rep := busyReply(m)
		rep.ClientID = c.id
		rep.Advice = &advice{Reconnect: "none", Interval: ms(0)}
		return rep, false
	}
	return reply{}, true
}

// connectReply is a successful connect reply, with adv (nil: no advice).
func connectReply(clientID string, m *message, adv *advice) reply {
	rep := newReply(m)
	rep.ClientID = clientID
	rep.Successful = true
	rep.Advice = adv
	return rep
}

// adviceFor is the advice of c's next successful connect reply: nil when c was last given
// the same advice. As CometD servers (and so Salesforce) do, advice goes out on the first
// connect reply of a session, on every multiple-clients reply, and on the first reply after
// one; other replies carry none (cometd/cometd#775, kdcllc/CometD.NetCore.Salesforce#43).
// Callers hold s.mu.
func (s *Server) adviceFor(c *client, multi bool) *advice {
	want := advisedNormal
	if multi {
		want = advisedMulti
	}
	if c.advised == want && !multi {
		return nil
	}
	c.advised = want
	adv := &advice{Interval: ms(s.opts.AdviceInterval), Timeout: ms(s.opts.AdviceTimeout), Reconnect: "retry"}
	if multi {
		adv.Interval = ms(s.opts.MultiSessionInterval)
		adv.MultipleClients = true
	}
	return adv
}

// connect answers a validated /meta/connect, holding it when the client is connected, has no
// events waiting and no other client of its browser holds a connect. status is 0 to write the
// reply, -1 when the client went away, or an HTTP status to answer with instead (408 for a
// connect superseded by a newer one from the same client, as CometD 3 answers it).
func (s *Server) connect(r *http.Request, rq *request, m *message, alone bool) (reply, [][]byte, int) {
	timeout := s.opts.AdviceTimeout
	if m.Advice != nil && m.Advice.Timeout != nil && *m.Advice.Timeout >= 0 {
		if t := time.Duration(*m.Advice.Timeout * float64(time.Millisecond)); t < timeout {
			timeout = t
		}
	}

	s.mu.Lock()
	c := s.clients[m.ClientID]
	if c == nil || c.gone {
		if s.consumeTombstoneLocked(m.ClientID) {
			rq.pre = append(rq.pre, disconnectMsg)
		}
		s.mu.Unlock()
		return unknownClientReply(m), nil, 0
	}
	if s.exhaustedLocked(s.opts.Now()) {
		s.dropClient(c, wakeDropped)
		s.mu.Unlock()
		return dailyLimitReply(m, c.id), [][]byte{disconnectMsg}, 0
	}
	hold := c.connected && len(c.queue) == 0 && timeout > 0 && !s.closed
	multi := false
	if hold && s.browsers[c.browser] > 0 {
		hold, multi = false, true
	}
	var p *poll
	if hold {
		p = &poll{done: make(chan struct{}), browser: c.browser, counted: true}
		c.poll = p
		s.browsers[c.browser]++
	}
	s.mu.Unlock()

	if hold {
		if s.onHold != nil {
			s.onHold()
		}
		timer := time.NewTimer(timeout)
		var reason wakeReason
		select {
		case <-p.done:
		case <-timer.C:
		case <-r.Context().Done():
		}
		timer.Stop()
		s.mu.Lock()
		if c.poll == p {
			c.poll = nil
		}
		s.uncount(p)
		reason = p.reason
		if r.Context().Err() != nil {
			c.lastSeen = s.opts.Now()
			s.mu.Unlock()
			return reply{}, nil, -1
		}
		s.mu.Unlock()
		switch reason {
		case wakeSuperseded:
			if alone {
				return reply{}, nil, http.StatusRequestTimeout
			}
		case wakeDropped:
			s.mu.Lock()
			if s.consumeTombstoneLocked(c.id) {
				rq.pre = append(rq.pre, disconnectMsg)
			}
			s.mu.Unlock()
			return unknownClientReply(m), nil, 0
		case wakeDisconnected:
			rep := newReply(m)
			rep.ClientID = c.id
			rep.Successful = true
			rep.Advice = &advice{Reconnect: "none", Interval: ms(0)}
			return rep, nil, 0
		}
		// The session is validated again before answering a held connect.
		if s.opts.Authenticate != nil {
			if principal, ok := s.opts.Authenticate(rq.token); !ok || principal != c.principal {
				s.mu.Lock()
				s.dropClient(c, wakeDropped)
				s.mu.Unlock()
				rep := newReply(m)
				rep.ClientID = c.id
				rep.Error = ErrTextAuthInvalid
				rep.Advice = &advice{Reconnect: "none", Interval: ms(0)}
				return rep, nil, 0
			}
		}
	}

	s.mu.Lock()
	if c.gone {
		if s.consumeTombstoneLocked(c.id) {
			rq.pre = append(rq.pre, disconnectMsg)
		}
		s.mu.Unlock()
		return unknownClientReply(m), nil, 0
	}
	now := s.opts.Now()
	if s.exhaustedLocked(now) {
		s.dropClient(c, wakeDropped)
		s.mu.Unlock()
		return dailyLimitReply(m, c.id), [][]byte{disconnectMsg}, 0
	}
	events := s.take(c, now)
	c.connected = true
	c.lastSeen = now
	adv := s.adviceFor(c, multi)
	s.mu.Unlock()
	return connectReply(c.id, m, adv), events, 0
}

func unknownClientReply(m *message) reply {
	rep := newReply(m)
	rep.Error = ErrTextUnknownClient
	rep.Advice = &advice{Reconnect: "handshake", Interval: ms(0)}
	return rep
}

// take removes up to MaxResponseBytes of queued events (at least one) from c's queue, and no
// more counted events than the delivery allocation has left; using it up answers every other
// held connect with the daily-limit error. Callers hold s.mu.
func (s *Server) take(c *client, now time.Time) [][]byte {
	if len(c.queue) == 0 {
		return nil
	}
	left := s.remainingLocked(now)
	size, n := 0, 0
	var counted int64
	for n < len(c.queue) {
		l := len(c.queue[n].msg) + 1
		if n > 0 && size+l > s.opts.MaxResponseBytes {
			break
		}
		if countsTowardDeliveries(c.queue[n].ch.name) {
			if left >= 0 && counted >= left {
				break
			}
			counted++
		}
		size += l
		n++
	}
	if n == 0 {
		return nil
	}
	s.countLocked(now, counted)
	if counted > 0 && left >= 0 && counted >= left {
		s.releaseAllLocked(wakeLimit)
	}
	out := make([][]byte, n)
	for i := range n {
		out[i] = c.queue[i].msg
	}
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	s.delivered += int64(n)
	return out
}

// RevalidateSessions answers every held connect at once after checking its token again with
// Authenticate: a revoked token gets 401::Authentication invalid now rather than at the next
// advice timeout.
func (s *Server) RevalidateSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		if c.poll != nil {
			s.release(c, wakeRevalidate)
		}
	}
}
