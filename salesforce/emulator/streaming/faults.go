package streaming

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error texts of the Salesforce-side streaming failures (facts §4.6, §5.5).
const (
	// ErrTextDailyLimit answers /meta/connect once the rolling-24-h delivery allocation
	// (DailyDeliveredPlatformEvents) is used up.
	ErrTextDailyLimit = "403::Organization total events daily limit exceeded"
	// ErrTextTooBusy is ext.sfdc.failureReason (and, on connect and subscribe, the error) of
	// a request refused because the server is overloaded.
	ErrTextTooBusy = "503::Server is too busy. Please try your request again later."
	// ErrTextConcurrentClients is ext.sfdc.failureReason of a handshake refused because the
	// org has as many CometD clients as its allocation allows.
	ErrTextConcurrentClients = "403::Organization concurrent user limit exceeded"
)

// Fault kinds for InjectFault.
const (
	// FaultTooBusy answers the next Count requests of Op (handshake, connect or subscribe)
	// with Salesforce's 503 "Server is too busy" in ext.sfdc.failureReason.
	FaultTooBusy = "too-busy"
	// FaultConcurrentClients refuses the next Count handshakes with
	// "403::Organization concurrent user limit exceeded", whatever the client count.
	FaultConcurrentClients = "concurrent-clients"
	// FaultDailyLimit uses up the delivery allocation until ResetDeliveries or ClearFaults:
	// every /meta/connect gets "403::Organization total events daily limit exceeded".
	FaultDailyLimit = "daily-limit"
)

// Fault is one injected streaming failure (see the Fault* kinds).
type Fault struct {
	Kind  string `json:"kind"`
	Op    string `json:"op,omitempty"`
	Count int    `json:"count,omitempty"`
}

// disconnectMsg is the message a CometD server queues for a session it disconnects (CometD's
// ServerSessionImpl.disconnect: channel and successful only). Salesforce's server derives
// from CometD; API 64.0+ clients must expect it.
var disconnectMsg = []byte(`{"channel":"/meta/disconnect","successful":true}`)

// maxTombstones bounds the dropped clientIds remembered for their server-sent disconnect.
const maxTombstones = 10_000

// faultState is the Server's injected faults and allocation counters. Guarded by Server.mu.
type faultState struct {
	busy        map[string]int // op -> requests still to refuse as too busy
	refuse      int            // handshakes still to refuse as over the client limit
	maxClients  int            // 0: no limit
	limit       int64          // daily delivery allocation; 0: counted, not enforced
	forced      bool           // FaultDailyLimit: allocation used up whatever the count
	buckets     []bucket       // counted deliveries per minute, oldest first
	tombstones  map[string]struct{}
	deliveredOK int64 // counted deliveries since New (not windowed)
}

type bucket struct {
	at time.Time // start of the minute
	n  int64
}

// countsTowardDeliveries reports whether events on ch count toward DailyDeliveredPlatformEvents:
// change events (/data/) and platform events (/event/), as Salesforce counts them. PushTopic
// and generic events have their own allocations.
func countsTowardDeliveries(ch string) bool {
	return strings.HasPrefix(ch, "/data/") || strings.HasPrefix(ch, "/event/")
}

// usedLocked returns the counted deliveries of the last 24 h, forgetting older buckets.
// Callers hold s.mu.
func (s *Server) usedLocked(now time.Time) int64 {
	f := &s.flt
	cut := now.Add(-24 * time.Hour)
	i := 0
	for i < len(f.buckets) && !f.buckets[i].at.After(cut) {
		i++
	}
	if i > 0 {
		f.buckets = append(f.buckets[:0], f.buckets[i:]...)
	}
	var n int64
	for _, b := range f.buckets {
		n += b.n
	}
	return n
}

// countLocked adds n counted deliveries at now. Callers hold s.mu.
func (s *Server) countLocked(now time.Time, n int64) {
	if n == 0 {
		return
	}
	f := &s.flt
	f.deliveredOK += n
	m := now.Truncate(time.Minute)
	if k := len(f.buckets); k > 0 && f.buckets[k-1].at.Equal(m) {
		f.buckets[k-1].n += n
		return
	}
	f.buckets = append(f.buckets, bucket{at: m, n: n})
}

// remainingLocked is how many counted events may still be delivered (-1: no limit).
// Callers hold s.mu.
func (s *Server) remainingLocked(now time.Time) int64 {
	if s.flt.forced {
		return 0
	}
	if s.flt.limit <= 0 {
		return -1
	}
	return max(s.flt.limit-s.usedLocked(now), 0)
}

// exhaustedLocked reports whether the delivery allocation is used up. Callers hold s.mu.
func (s *Server) exhaustedLocked(now time.Time) bool { return s.remainingLocked(now) == 0 }

// releaseAllLocked answers every held connect now with reason r. Callers hold s.mu.
func (s *Server) releaseAllLocked(r wakeReason) {
	for _, c := range s.clients {
		if c.poll != nil {
			s.release(c, r)
		}
	}
}

// takeBusyLocked consumes one too-busy fault for op. Callers hold s.mu.
func (s *Server) takeBusyLocked(op string) bool {
	if s.flt.busy[op] <= 0 {
		return false
	}
	s.flt.busy[op]--
	return true
}

// tombstoneLocked remembers a clientId dropped by DropAllClients. Callers hold s.mu.
func (s *Server) tombstoneLocked(id string) {
	if s.flt.tombstones == nil {
		s.flt.tombstones = make(map[string]struct{})
	}
	if len(s.flt.tombstones) < maxTombstones {
		s.flt.tombstones[id] = struct{}{}
	}
}

// consumeTombstoneLocked reports (once) whether id was dropped by DropAllClients and has not
// yet been told so. Callers hold s.mu.
func (s *Server) consumeTombstoneLocked(id string) bool {
	if _, ok := s.flt.tombstones[id]; !ok {
		return false
	}
	delete(s.flt.tombstones, id)
	return true
}

// failureExt is ext {"sfdc":{"failureReason":reason}}, with the replay extension's fields
// when withReplay (as in handshake denials logged from real orgs).
func failureExt(reason string, withReplay bool) json.RawMessage {
	ext := map[string]any{"sfdc": map[string]string{"failureReason": reason}}
	if withReplay {
		ext["replay"] = true
		ext["payload.format"] = true
	}
	b, _ := json.Marshal(ext)
	return b
}

// busyReply is the reply of a message refused as too busy: on the handshake the error is
// "403::Handshake denied"; on other channels the 503 itself; the cause is always in
// ext.sfdc.failureReason.
func busyReply(m *message) reply {
	rep := newReply(m)
	rep.Ext = failureExt(ErrTextTooBusy, m.Channel == channelHandshake)
	rep.Error = ErrTextTooBusy
	if m.Channel == channelHandshake {
		rep.Error = ErrTextHandshakeDenied
		rep.Advice = &advice{Reconnect: "none"}
	}
	return rep
}

// dailyLimitReply answers a connect once the delivery allocation is used up.
func dailyLimitReply(m *message, clientID string) reply {
	rep := newReply(m)
	rep.ClientID = clientID
	rep.Error = ErrTextDailyLimit
	rep.Advice = &advice{Reconnect: "none", Interval: ms(0)}
	return rep
}

// InjectFault arms one streaming fault (see the Fault* kinds).
func (s *Server) InjectFault(f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f.Kind {
	case FaultTooBusy:
		op := f.Op
		if op == "" {
			op = "connect"
		}
		switch op {
		case "handshake", "connect", "subscribe":
		default:
			return fmt.Errorf("inject streaming fault %s: op %q (want handshake, connect or subscribe)", f.Kind, f.Op)
		}
		if f.Count <= 0 {
			return fmt.Errorf("inject streaming fault %s: count must be positive", f.Kind)
		}
		if s.flt.busy == nil {
			s.flt.busy = make(map[string]int)
		}
		s.flt.busy[op] += f.Count
	case FaultConcurrentClients:
		if f.Count <= 0 {
			return fmt.Errorf("inject streaming fault %s: count must be positive", f.Kind)
		}
		s.flt.refuse += f.Count
	case FaultDailyLimit:
		s.flt.forced = true
		s.releaseAllLocked(wakeLimit)
	default:
		return fmt.Errorf("inject streaming fault: kind %q (want %s, %s or %s)", f.Kind, FaultTooBusy, FaultConcurrentClients, FaultDailyLimit)
	}
	return nil
}

// ClearFaults disarms every injected fault (too-busy, concurrent-clients, daily-limit).
// Configured limits and delivery counts stay.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flt.busy = nil
	s.flt.refuse = 0
	s.flt.forced = false
}

// SetDeliveryLimit sets the rolling-24-h allocation of delivered /data/ and /event/ events
// (Salesforce's DailyDeliveredPlatformEvents, counted per subscriber). 0 counts without
// enforcing. Negative values are an error.
func (s *Server) SetDeliveryLimit(n int64) error {
	if n < 0 {
		return fmt.Errorf("set delivery limit %d: must be >= 0", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flt.limit = n
	if s.exhaustedLocked(s.opts.Now()) {
		s.releaseAllLocked(wakeLimit)
	}
	return nil
}

// ResetDeliveries forgets every counted delivery and a FaultDailyLimit, as if a day had passed.
func (s *Server) ResetDeliveries() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flt.buckets = nil
	s.flt.forced = false
}

// Deliveries returns the counted deliveries of the last 24 h (by the Now clock), the
// allocation (0: not enforced) and whether it is used up (by count or by FaultDailyLimit).
func (s *Server) Deliveries() (used, limit int64, exhausted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	return s.usedLocked(now), s.flt.limit, s.exhaustedLocked(now)
}

// SetMaxClients sets the org's concurrent CometD client allocation (0: no limit). Handshakes
// beyond it are refused; existing clients stay.
func (s *Server) SetMaxClients(n int) error {
	if n < 0 {
		return fmt.Errorf("set max clients %d: must be >= 0", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flt.maxClients = n
	return nil
}

// ClientUsage returns the live clientIds (idle ones past ClientTimeout are expired first) and
// the concurrent-client allocation (0: no limit).
func (s *Server) ClientUsage() (clients, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireIdleLocked(s.opts.Now())
	return len(s.clients), s.flt.maxClients
}

// handshakeRefusal returns the failureReason a handshake is refused with, if any, consuming
// a FaultConcurrentClients. Callers hold s.mu.
func (s *Server) handshakeRefusalLocked(now time.Time) string {
	if s.flt.refuse > 0 {
		s.flt.refuse--
		return ErrTextConcurrentClients
	}
	if s.flt.maxClients > 0 {
		if len(s.clients) >= s.flt.maxClients {
			s.expireIdleLocked(now)
		}
		if len(s.clients) >= s.flt.maxClients {
			return ErrTextConcurrentClients
		}
	}
	return ""
}

// WriteHTTPFault answers r with HTTP status (an injected transport-level fault, such as a
// proxy in front of the org would return) and a Bayeux body: one unsuccessful reply per
// message of the request, error "<status>::<reason>" (503: the too-busy text, also in
// ext.sfdc.failureReason), so that a client decoding the body reads Bayeux, not plain text.
// Headers such as Retry-After are the caller's.
func (s *Server) WriteHTTPFault(w http.ResponseWriter, r *http.Request, status int) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxRequestBytes))
	msgs, err := decodeMessages(body)
	if err != nil {
		msgs = []message{{}}
	}
	text := strconv.Itoa(status) + "::" + http.StatusText(status)
	if status == http.StatusServiceUnavailable {
		text = ErrTextTooBusy
	}
	replies := make([]reply, len(msgs))
	for i := range msgs {
		replies[i] = newReply(&msgs[i])
		replies[i].ClientID = msgs[i].ClientID
		replies[i].Error = text
		if status == http.StatusServiceUnavailable {
			replies[i].Ext = failureExt(ErrTextTooBusy, false)
		}
	}
	writeJSON(w, status, nil, replies)
}
