// /meta/handshake: authentication, allocations, the BAYEUX_BROWSER cookie and a new clientId.

package streaming

import (
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
)

var handshakeExt = json.RawMessage(`{"replay":true,"payload.format":true}`)

func (s *Server) handshake(w http.ResponseWriter, rq *request, m *message) reply {
	rep := newReply(m)
	deny := func(reason string) reply {
		ext, _ := json.Marshal(map[string]any{"sfdc": map[string]string{"failureReason": reason}})
		rep.Ext = ext
		rep.Advice = &advice{Reconnect: "none"}
		rep.Error = ErrTextHandshakeDenied
		return rep
	}
	s.mu.Lock()
	busy := s.takeBusyLocked("handshake")
	s.mu.Unlock()
	if busy {
		return busyReply(m)
	}
	if rq.token == "" {
		return deny(ErrTextAuthRequired)
	}
	principal, ok := s.auth(rq)
	if !ok {
		return deny(ErrTextAuthInvalid)
	}
	if len(m.SupportedConnectionTypes) > 0 {
		found := false
		for _, t := range m.SupportedConnectionTypes {
			if t == connectionLongPolling {
				found = true
			}
		}
		if !found {
			rep.Error = invalidConnectionType(strings.Join(m.SupportedConnectionTypes, ","))
			rep.Advice = &advice{Reconnect: "none"}
			return rep
		}
	}
	if rq.browser == "" {
		rq.browser = randomID()
		http.SetCookie(w, &http.Cookie{Name: browserCookie, Value: rq.browser, Path: "/", HttpOnly: true})
	}
	now := s.opts.Now()
	c := &client{
		id:        randomID(),
		browser:   rq.browser,
		principal: principal,
		subs:      make(map[string]*subscription),
		lastSeen:  now,
	}
	s.mu.Lock()
	if reason := s.handshakeRefusalLocked(now); reason != "" {
		s.mu.Unlock()
		rep = deny(reason)
		rep.Ext = failureExt(reason, true)
		return rep
	}
	s.clients[c.id] = c
	s.maybeSweep(now)
	s.mu.Unlock()
	s.log.Debug("bayeux handshake", slog.String("client_id", c.id))

	rep.Ext = handshakeExt
	rep.MinimumVersion = "1.0"
	rep.ClientID = c.id
	rep.SupportedConnectionTypes = []string{connectionLongPolling}
	rep.Version = "1.0"
	rep.Successful = true
	return rep
}

// randomID returns a Salesforce-looking lower-case base-36 id of about 25 characters.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return new(big.Int).SetBytes(b[:]).Text(36)
}
