// /meta/disconnect, and the server-side ends of a session: drops, expiry, queue overflow.

package streaming

import (
	"log/slog"
	"time"
)

func (s *Server) disconnect(rq *request, m *message) reply {
	c, fail, _ := s.lockedLookup(rq, m)
	defer s.mu.Unlock()
	if fail != nil {
		return *fail
	}
	s.dropClient(c, wakeDisconnected)
	rep := newReply(m)
	rep.ClientID = c.id
	rep.Successful = true
	return rep
}

// dropClient forgets c and answers its held connect. Callers hold s.mu.
func (s *Server) dropClient(c *client, r wakeReason) {
	if c.gone {
		return
	}
	c.gone = true
	delete(s.clients, c.id)
	for _, sub := range c.subs {
		delete(sub.st.subs, c)
	}
	c.queue = nil
	if c.poll != nil {
		s.release(c, r)
	}
}

func (s *Server) overflow(c *client) {
	s.dropped++
	s.log.Warn("bayeux client dropped: event queue overflow", slog.String("client_id", c.id), slog.Int("max_queue", s.opts.MaxQueue))
	s.dropClient(c, wakeDropped)
}

// maybeSweep expires idle clients and applies retention at most every ClientTimeout/4 of
// (injected) time, so memory stays bounded without a background goroutine. Callers hold s.mu.
func (s *Server) maybeSweep(now time.Time) {
	if now.Sub(s.lastSweep) < s.opts.ClientTimeout/4 {
		return
	}
	s.lastSweep = now
	s.expireIdleLocked(now)
	s.pruneTombstonesLocked(now)
	for _, st := range s.channels {
		st.pruneBefore(now.Add(-st.retention))
	}
	s.cleanFIFO()
}

// expireIdleLocked forgets clients with no held connect that sent nothing for ClientTimeout.
// Callers hold s.mu.
func (s *Server) expireIdleLocked(now time.Time) {
	for _, c := range s.clients {
		if c.poll == nil && now.Sub(c.lastSeen) > s.opts.ClientTimeout {
			s.dropClient(c, wakeDropped)
		}
	}
}

// DropAllClients disconnects every known clientId from the server side: their next message
// gets 403::Unknown client (advice reconnect "handshake", interval 0), and held connects
// answer that at once. The first /meta/connect of each dropped client (the held one, or the
// next, if it comes within ClientTimeout) also carries a server-sent
// {"channel":"/meta/disconnect","successful":true} before its reply.
func (s *Server) DropAllClients() {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		s.tombstoneLocked(c.id, now)
		s.dropClient(c, wakeDropped)
	}
}
