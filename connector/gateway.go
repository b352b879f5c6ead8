package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/omniroute/omniroute/routing"
)

// AgentPath is where the agent websocket is served.
const AgentPath = "/v1/agent"

// Gateway defaults.
const (
	defaultSendQueue       = 64
	defaultMaxFrameBytes   = 64 << 10
	defaultPingInterval    = 25 * time.Second
	defaultPongTimeout     = 60 * time.Second
	defaultWriteTimeout    = 10 * time.Second
	defaultSnapshotTimeout = 10 * time.Second
	defaultInputTimeout    = 5 * time.Second
	defaultFramesPerSecond = 20
	defaultFrameBurst      = 40
	closeWriteTimeout      = time.Second
)

// Close codes the gateway ends a connection with (RFC 6455 §7.4: 4000-4999 are the
// application's).
const (
	// CloseReplaced: the agent opened a newer connection; this one is over.
	CloseReplaced = 4000
	// CloseTooSlow: the client did not keep up with its messages; reconnect for a snapshot.
	CloseTooSlow = 4001
)

// Disconnect reasons (omniroute_gateway_disconnects_total{reason}).
const (
	discReplaced     = "replaced"
	discSlow         = "slow"
	discHeartbeat    = "heartbeat"
	discClientClosed = "client_closed"
	discTooLarge     = "too_large"
	discWriteFailed  = "write_failed"
	discReadFailed   = "read_failed"
	discShutdown     = "shutdown"
	discSnapshot     = "snapshot_failed"
	discRestart      = "router_restarted"
)

var discReasons = []string{discReplaced, discSlow, discHeartbeat, discClientClosed, discTooLarge, discWriteFailed,
	discReadFailed, discShutdown, discSnapshot, discRestart}

// GatewayOptions configures the agent gateway.
type GatewayOptions struct {
	// Router takes the agents' input and answers their snapshots. Nil: none yet (SetRouter);
	// until one is set, upgrades are refused with 503 not_ready.
	Router AgentRouter
	// Auth says which tokens are accepted.
	Auth AgentAuthOptions
	// Origins are the browser origins allowed to connect (OMNIROUTE_AGENT_ORIGINS:
	// scheme://host[:port]; case and a default port do not matter). A request without Origin
	// (not a browser) is let through to the token check; one with an Origin not listed is
	// refused.
	Origins []string
	// Registerer receives the gateway's metrics, under the daemon's prefix. Nil registers none.
	Registerer prometheus.Registerer
	// Logger logs connections and refusals (never a token). Nil discards.
	Logger *slog.Logger
	// Now is the clock (wrap-up deadlines). Default time.Now.
	Now func() time.Time

	// SendQueue is each connection's queue of messages (default 64): a client that lets it
	// fill is dropped. MaxFrameBytes is the largest client frame (default 64 KiB).
	SendQueue     int
	MaxFrameBytes int64
	// SendBuffer, when above 0, is each connection's socket send buffer in bytes (SO_SNDBUF;
	// Linux doubles it for its bookkeeping). 0 leaves it to the kernel's autotuning, which
	// grows with the path: on loopback some 1.6 MB of frames wait in the kernel for a client
	// that stopped reading before the writer blocks and the queue starts to fill. A smaller
	// buffer bounds the kernel memory a stalled client holds and finds it sooner; it also caps
	// one connection's throughput at about SendBuffer per round trip (a snapshot of a large
	// directory takes longer to far consoles).
	SendBuffer int
	// PingInterval is how often the gateway pings (default 25 s); PongTimeout how long a
	// client may stay silent, pongs included (default 60 s); WriteTimeout how long one write
	// may take (default 10 s; 90 to 100% of it, as the deadline is renewed once a tenth has
	// passed); SnapshotTimeout how long the router may take for a snapshot;
	// InputTimeout how long a client frame may wait for room in the router's inbox (default
	// 5 s) before the client is told router_unavailable and the reader reads on.
	PingInterval    time.Duration
	PongTimeout     time.Duration
	WriteTimeout    time.Duration
	SnapshotTimeout time.Duration
	InputTimeout    time.Duration
	// FramesPerSecond is how many frames a second the gateway reads from one client after a
	// burst of FrameBurst (defaults 20 and 40): a faster client is slowed down (its frames wait
	// in TCP), so a console in a loop cannot flood the router or the org's API limits.
	FramesPerSecond float64
	FrameBurst      int
}

// Gateway is the agent websocket at /v1/agent (docs/agent-protocol.md). It authenticates
// before the upgrade, keeps one live connection per agent (the newest wins), turns client
// frames into AgentInput for the router and the router's AgentMessages into frames. It is the
// router's AgentSink: Deliver never blocks, and a connection that falls behind is dropped.
//
// Each connection has two goroutines: the request's own, which reads frames and hands them to
// Router.FromAgent (so a full inbox slows only that agent's reads), and a writer, the only
// one to write: hello and snapshot first, then the queued messages, pings every PingInterval.
type Gateway struct {
	o        GatewayOptions
	log      *slog.Logger
	auth     atomic.Pointer[agentAuth]
	origins  map[string]bool
	upgrader websocket.Upgrader
	metrics  *gatewayMetrics

	mu     sync.RWMutex
	conns  map[string]*agentConn // user → live connection
	closed bool
	// serving counts the connections' handlers (Add under mu while not closed; Close waits).
	serving sync.WaitGroup

	// router is the router in use (nil: none, upgrades refused).
	router atomic.Pointer[routerRef]
	// wrapUps is each plan's wrap-up timeout (seconds), from the newest snapshot's directory.
	wrapUps atomic.Pointer[map[string]float64]
	// wrote, when set (the benchmark), is called after each frame is written.
	wrote func(user string)
}

// NewGateway builds the gateway. It serves nothing until mounted (HTTPOptions.Agent).
func NewGateway(o GatewayOptions) (*Gateway, error) {
	origins, err := parseOrigins(o.Origins)
	if err != nil {
		return nil, fmt.Errorf("agent gateway: %w", err)
	}
	auth, err := newAgentAuth(o.Auth)
	if err != nil {
		return nil, fmt.Errorf("agent gateway: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	orDefault(&o.SendQueue, defaultSendQueue)
	orDefault(&o.MaxFrameBytes, defaultMaxFrameBytes)
	orDefault(&o.PingInterval, defaultPingInterval)
	orDefault(&o.PongTimeout, defaultPongTimeout)
	orDefault(&o.WriteTimeout, defaultWriteTimeout)
	orDefault(&o.SnapshotTimeout, defaultSnapshotTimeout)
	orDefault(&o.InputTimeout, defaultInputTimeout)
	orDefault(&o.FramesPerSecond, defaultFramesPerSecond)
	orDefault(&o.FrameBurst, defaultFrameBurst)
	g := &Gateway{
		o: o, log: o.Logger.With("component", "gateway"), origins: origins,
		metrics: newGatewayMetrics(o.Registerer), conns: map[string]*agentConn{},
		upgrader: websocket.Upgrader{
			HandshakeTimeout: o.WriteTimeout,
			Subprotocols:     []string{AgentSubprotocol},
			// Origin is checked before the upgrade, with the token (ServeHTTP).
			CheckOrigin: func(*http.Request) bool { return true },
			// Write buffers are borrowed per message, so an idle connection holds none.
			WriteBufferPool: &sync.Pool{},
		},
	}
	g.auth.Store(auth)
	g.SetRouter(o.Router)
	return g, nil
}

// SetOrg lets in the Salesforce access tokens of orgID's users, checked at userinfoURL, next
// to the demo tokens. The daemon learns the org's id only when it logs in, after New: until
// then Salesforce tokens are refused (401). Connections already open are kept.
func (g *Gateway) SetOrg(orgID, userinfoURL string) error {
	o := g.o.Auth
	o.OrgID, o.UserInfoURL = orgID, userinfoURL
	a, err := newAgentAuth(o)
	if err != nil {
		return fmt.Errorf("agent gateway: %w", err)
	}
	g.auth.Store(a)
	return nil
}

// routerRef holds an AgentRouter for atomic.Pointer.
type routerRef struct{ AgentRouter }

// SetRouter makes r the router the gateway hands input to and takes snapshots from (nil: none;
// upgrades are then refused with 503 not_ready, and clients retry). The daemon calls it when
// its router starts and stops (a restart, a lost leadership). Live connections belong to the
// previous router: they are closed (1012 service restart) and their clients reconnect for a
// snapshot of the new one.
func (g *Gateway) SetRouter(r AgentRouter) {
	if r == nil {
		g.router.Store(nil)
	} else {
		g.router.Store(&routerRef{r})
	}
	// After the store: a connection registered from here on has the new router.
	g.closeAll(false, websocket.CloseServiceRestart, "router restarted: reconnect", discRestart)
}

// closeAll closes every registered connection (and, with shutdown, refuses new ones).
func (g *Gateway) closeAll(shutdown bool, code int, text, reason string) {
	g.mu.Lock()
	g.closed = g.closed || shutdown
	conns := slices.Collect(maps.Values(g.conns))
	g.mu.Unlock()
	for _, c := range conns {
		c.close(code, text, reason)
	}
}

func orDefault[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// parseOrigins checks the allow-list: each entry scheme://host[:port], nothing else.
func parseOrigins(list []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, o := range list {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("origin %q is not scheme://host[:port]", o)
		}
		out[canonicalOrigin(u.Scheme, u.Host)] = true
	}
	return out, nil
}

// canonicalOrigin is an origin as browsers send it (RFC 6454): lower case, without the
// scheme's default port.
func canonicalOrigin(scheme, host string) string {
	scheme, host = strings.ToLower(scheme), strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil && (scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return scheme + "://" + host
}

// originAllowed says whether a request's Origin header is on the allow-list.
func (g *Gateway) originAllowed(origin string) bool {
	scheme, host, ok := strings.Cut(origin, "://")
	return ok && g.origins[canonicalOrigin(scheme, host)]
}

// ServeHTTP refuses the request (401, 403, 400 or 503, JSON) unless its origin is allowed and
// its token is valid, then upgrades it and serves the connection until it ends.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, aerr := g.admit(r)
	if aerr != nil {
		g.metrics.refused.WithLabelValues(aerr.reason).Inc()
		g.log.Warn("agent connection refused", "reason", aerr.reason, "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
		if aerr.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="omniroute-agent"`)
		}
		writeError(w, aerr.status, APIError{Error: aerr.reason, Message: aerr.message})
		return
	}
	// The server's ReadTimeout and WriteTimeout were set on this connection for the request;
	// a websocket lives longer, with deadlines of its own (pings, WriteTimeout).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		g.metrics.refused.WithLabelValues(refusedNotWebsocket).Inc()
		return // the upgrader answered the client
	}
	if g.o.SendBuffer > 0 {
		if tc, ok := ws.NetConn().(interface{ SetWriteBuffer(int) error }); ok {
			if err := tc.SetWriteBuffer(g.o.SendBuffer); err != nil {
				g.log.Warn("set the agent connection's send buffer", "user", user, "err", err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c := &agentConn{g: g, user: user, ws: ws, send: make(chan outItem, g.o.SendQueue), done: make(chan struct{}), ctx: ctx, cancel: cancel,
		pace: rate.NewLimiter(rate.Limit(g.o.FramesPerSecond), g.o.FrameBurst)}
	c.ref = g.router.Load()
	defer cancel()
	var first []any
	switch g.register(c) {
	case registered:
		defer g.serving.Done()
		g.log.Debug("agent connected", "user", user, "remote", r.RemoteAddr)
		first = g.firstFrames(c)
	case routerChanged: // SetRouter since admit
		c.close(websocket.CloseServiceRestart, "router restarted: reconnect", discRestart)
	default:
		c.close(websocket.CloseGoingAway, "server shutting down", discShutdown)
	}
	defer g.unregister(c)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		c.writeLoop(first)
	}()
	c.readLoop()
	<-wrote
	// Logged here, not where the connection is dropped: Deliver (the router's goroutine) never
	// waits for the log.
	if c.reason == discSlow {
		g.log.Warn("agent connection dropped: too slow; its console reconnects for a snapshot", "user", user, "queue", cap(c.send))
	}
	g.log.Debug("agent disconnected", "user", user, "reason", c.reason)
}

// admit checks the origin and the token, and an agent named in ?agent= against the token's.
func (g *Gateway) admit(r *http.Request) (string, *authError) {
	g.mu.RLock()
	closed := g.closed
	g.mu.RUnlock()
	if closed {
		return "", refuse(http.StatusServiceUnavailable, refusedShutdown, "the gateway is shutting down")
	}
	if g.router.Load() == nil {
		return "", refuse(http.StatusServiceUnavailable, refusedNotReady, "omniroute is not routing yet; retry")
	}
	if o := r.Header.Get("Origin"); o != "" && !g.originAllowed(o) {
		return "", refuse(http.StatusForbidden, refusedOrigin, "origin not allowed")
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return "", refuse(http.StatusBadRequest, refusedNotWebsocket, "this endpoint is a websocket (docs/agent-protocol.md)")
	}
	token, aerr := requestToken(r)
	if aerr != nil {
		return "", aerr
	}
	user, aerr := g.auth.Load().authenticate(r.Context(), token)
	if aerr != nil {
		return "", aerr
	}
	if want := r.URL.Query().Get("agent"); want != "" && want != user {
		return "", refuse(http.StatusForbidden, refusedMismatch, "the token is not this agent's")
	}
	return user, nil
}

// firstFrames are hello and the snapshot, or an error when the router has no snapshot (the
// connection then closes).
func (g *Gateway) firstFrames(c *agentConn) []any {
	ctx, cancel := context.WithTimeout(c.ctx, g.o.SnapshotTimeout)
	defer cancel()
	snap, err := c.ref.AgentSnapshot(ctx, c.user)
	if err != nil {
		g.log.Warn("agent snapshot failed", "user", c.user, "err", err)
		c.close(websocket.CloseInternalServerErr, "no snapshot", discSnapshot)
		return []any{errorFrame{Type: "error", Code: errCodeUnavailable, Reason: "snapshot_failed", Message: "the router has no snapshot for this agent; reconnect later"}}
	}
	wu := make(map[string]float64, len(snap.Plans))
	for _, p := range snap.Plans {
		wu[p.Name] = p.WrapUpTimeoutSeconds
	}
	g.wrapUps.Store(&wu)
	for _, w := range snap.Agent.Work {
		c.noteWork(w.WorkID, w.Plan)
	}
	for _, o := range snap.Offers {
		c.noteWork(o.WorkID, o.Plan)
	}
	return []any{
		helloFrame{Type: "hello", Version: ProtocolVersion, User: c.user, HeartbeatSeconds: g.o.PingInterval.Seconds()},
		encodeSnapshot(snap),
	}
}

// Outcomes of register.
const (
	registered = iota
	gatewayClosed
	routerChanged
)

// register makes c the user's live connection; the one it replaces is closed. It fails when
// the gateway is closed, or when the router changed since c took it (SetRouter stores the new
// router before it closes the registered connections, so c is either closed by it or refused
// here).
func (g *Gateway) register(c *agentConn) int {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return gatewayClosed
	}
	if ref := g.router.Load(); ref == nil || ref != c.ref {
		g.mu.Unlock()
		return routerChanged
	}
	g.serving.Add(1)
	old := g.conns[c.user]
	g.conns[c.user] = c
	g.metrics.connected.Set(float64(len(g.conns)))
	g.mu.Unlock()
	if old != nil {
		old.close(CloseReplaced, "replaced by a newer connection", discReplaced)
	}
	return registered
}

// unregister forgets c unless a newer connection already took its place.
func (g *Gateway) unregister(c *agentConn) {
	g.mu.Lock()
	if g.conns[c.user] == c {
		delete(g.conns, c.user)
		g.metrics.connected.Set(float64(len(g.conns)))
	}
	g.mu.Unlock()
}

// Deliver queues m for user's live connection. It never blocks: it returns false when the
// user has no connection, or when the connection's queue is full; that connection is then
// closed (CloseTooSlow) and the client reconnects for a fresh snapshot.
func (g *Gateway) Deliver(user string, m AgentMessage) bool {
	g.mu.RLock()
	c := g.conns[user]
	g.mu.RUnlock()
	if c == nil || c.isClosed() {
		return false
	}
	select {
	case c.send <- outItem{msg: m}:
		return true
	default:
		c.close(CloseTooSlow, "too slow: reconnect for a snapshot", discSlow)
		g.unregister(c)
		return false
	}
}

// Connected reports how many agents have a live connection.
func (g *Gateway) Connected() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.conns)
}

// Close refuses new connections, closes every live one (CloseGoingAway) and waits until their
// handlers have returned. The HTTP server calls it on shutdown: hijacked connections are not
// the server's to drain.
func (g *Gateway) Close() {
	g.closeAll(true, websocket.CloseGoingAway, "server shutting down", discShutdown)
	g.serving.Wait()
}

// wrapUpDeadline is now plus the plan's wrap-up timeout, when the plan has one.
func (g *Gateway) wrapUpDeadline(plan string, now time.Time) *time.Time {
	m := g.wrapUps.Load()
	if m == nil {
		return nil
	}
	s := (*m)[plan]
	if s <= 0 {
		return nil
	}
	t := now.Add(time.Duration(s * float64(time.Second))).UTC()
	return &t
}

// outItem is one queued item: the router's message or a frame the reader answers with. The
// zero item only wakes the writer (close, a ping due).
type outItem struct {
	msg   AgentMessage
	frame any
}

// agentConn is one agent's websocket.
type agentConn struct {
	g      *Gateway
	user   string
	ref    *routerRef // the router when the connection opened
	ws     *websocket.Conn
	send   chan outItem
	ctx    context.Context // ends when the connection closes: FromAgent stops waiting
	cancel context.CancelFunc
	pace   *rate.Limiter // the client's frames a second (reader only)

	once   sync.Once
	done   chan struct{}
	code   int    // close code, set once before done closes
	text   string // close text
	reason string // disconnect reason

	// deadlineSet is when the writer last set the write deadline (writer only).
	deadlineSet time.Time
	// pingDue is set by the ping timer; the writer sends the ping and sets the timer again.
	pingDue atomic.Bool

	// workPlan is the plan of each of the agent's work items, for wrap-up deadlines. Written
	// before the writer starts, then only by the writer.
	workPlan map[string]string
}

func (c *agentConn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// close ends the connection once: the writer sends the close frame (code, text) and closes
// the socket, which ends the reader.
func (c *agentConn) close(code int, text, reason string) {
	c.once.Do(func() {
		c.code, c.text, c.reason = code, text, reason
		c.g.metrics.disconnects.WithLabelValues(reason).Inc()
		close(c.done)
		c.cancel()
		// Wake the writer. When the queue is full the writer has an item to take, after which it
		// sees done.
		select {
		case c.send <- outItem{}:
		default:
		}
	})
}

func (c *agentConn) noteWork(workID, plan string) {
	if workID == "" || plan == "" {
		return
	}
	if c.workPlan == nil {
		c.workPlan = map[string]string{}
	}
	c.workPlan[workID] = plan
}

// wrapUpDeadline implements wrapUps for the encoder.
func (c *agentConn) wrapUpDeadline(workID, plan string, now time.Time) *time.Time {
	if plan == "" {
		plan = c.workPlan[workID]
	}
	return c.g.wrapUpDeadline(plan, now)
}

// writeLoop is the connection's only writer: first, then the queue, with pings; on close it
// sends the close frame and closes the socket.
func (c *agentConn) writeLoop(first []any) {
	g := c.g
	defer func() { _ = c.ws.Close() }()
	ping := time.AfterFunc(g.o.PingInterval, c.pingFallsDue)
	defer ping.Stop()
	for _, f := range first {
		if !c.write(f) {
			return
		}
	}
	// The writer waits on its queue alone (one channel is cheaper to wait on and wake than a
	// select of three, at every frame): close and the ping timer put wake-up items in it too.
	for {
		it := <-c.send
		if c.isClosed() {
			if c.code != websocket.CloseAbnormalClosure { // 1006 is never sent (RFC 6455 §7.4.1)
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.text), time.Now().Add(closeWriteTimeout))
			}
			return
		}
		if c.pingDue.Load() {
			c.pingDue.Store(false)
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(g.o.WriteTimeout)); err != nil {
				c.close(websocket.CloseAbnormalClosure, "", discWriteFailed)
				return
			}
			ping.Reset(g.o.PingInterval)
		}
		f := it.frame
		switch {
		case f == nil && it.msg.Command == nil && it.msg.Console == nil:
			continue // a wake-up
		case f == nil:
			var ok bool
			if f, ok = c.encode(it.msg); !ok {
				continue
			}
		}
		if !c.write(f) {
			return
		}
	}
}

// pingFallsDue is the ping timer's: it marks a ping due and wakes the writer, which sends the
// ping before its next item and sets the timer again. A full queue needs no wake-up: the writer
// has items to take, and sends the ping with the first of them.
func (c *agentConn) pingFallsDue() {
	c.pingDue.Store(true)
	select {
	case c.send <- outItem{}:
	default:
	}
}

// encode turns a router message into its frame and follows the agent's work's plans.
func (c *agentConn) encode(m AgentMessage) (any, bool) {
	if cmd := m.Command; cmd != nil {
		c.noteWork(cmd.WorkID, cmd.Plan)
	}
	f, ok := encodeMessage(m, c.g.o.Now(), c)
	if cmd := m.Command; ok && cmd != nil && cmd.Type == routing.CommandEnded {
		delete(c.workPlan, cmd.WorkID)
	}
	return f, ok
}

// frameBuf is a buffer frames are encoded into, with its encoder.
type frameBuf struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// framePool holds the buffers frames are encoded into, each with its encoder: borrowed for one
// write, so an idle connection holds none, and no frame allocates a buffer or an encoder.
var framePool = sync.Pool{New: func() any {
	fb := new(frameBuf)
	fb.enc = json.NewEncoder(&fb.buf)
	return fb
}}

// write encodes f into a pooled buffer and writes it as one text message (gorilla copies it
// into its pooled write buffer: one write system call). A frame that cannot be encoded is
// logged and skipped; a write that fails ends the connection.
func (c *agentConn) write(f any) bool {
	g := c.g
	fb := framePool.Get().(*frameBuf)
	defer framePool.Put(fb)
	buf := &fb.buf
	buf.Reset()
	if err := fb.enc.Encode(f); err != nil {
		g.log.Error("encode agent frame", "user", c.user, "err", err)
		return true // skip the frame, keep the connection
	}
	now := time.Now()
	// Renewing the deadline costs a timer update per frame; renewing it once a tenth of
	// WriteTimeout (at most a second) has passed gives every write between 90% and 100% of it.
	if now.Sub(c.deadlineSet) > min(time.Second, g.o.WriteTimeout/10) {
		_ = c.ws.SetWriteDeadline(now.Add(g.o.WriteTimeout))
		c.deadlineSet = now
	}
	// Encode ends the object with a newline, which the frame does not need.
	if err := c.ws.WriteMessage(websocket.TextMessage, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))); err != nil {
		c.close(websocket.CloseAbnormalClosure, "", discWriteFailed)
		return false
	}
	g.metrics.outFrame(f).Inc()
	if g.wrote != nil {
		g.wrote(c.user)
	}
	return true
}

// reply queues a frame the reader answers with; a full queue drops the connection.
func (c *agentConn) reply(f errorFrame) {
	select {
	case c.send <- outItem{frame: f}:
	default:
		c.close(CloseTooSlow, "too slow: reconnect for a snapshot", discSlow)
	}
}

// readLoop reads frames until the connection ends: each good one goes to the router, each bad
// one gets an error frame and the connection carries on (a frame over the size limit ends it).
func (c *agentConn) readLoop() {
	g := c.g
	c.ws.SetReadLimit(g.o.MaxFrameBytes)
	alive := func() { _ = c.ws.SetReadDeadline(time.Now().Add(g.o.PongTimeout)) }
	alive()
	c.ws.SetPongHandler(func(string) error { alive(); return nil })
	for {
		if c.pace.Wait(c.ctx) != nil {
			return // closing
		}
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		alive()
		if mt != websocket.TextMessage {
			c.bad(&FrameError{Reason: badFrameBinary, Message: "frames are JSON text"}, "")
			continue
		}
		fr, err := DecodeAgentFrame(c.user, data)
		ref := fr.Ref
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				fe = &FrameError{Reason: badFrameJSON, Message: "undecodable frame"}
			}
			c.bad(fe, ref)
			continue
		}
		g.metrics.frames.WithLabelValues("in", fr.Type).Inc()
		if err := c.fromAgent(fr.Input); err != nil {
			if c.ctx.Err() != nil {
				return // closing
			}
			g.metrics.badFrames.WithLabelValues(badFrameRejected).Inc()
			c.reply(errorFrame{Type: "error", Code: errCodeUnavailable, Reason: badFrameRejected, Message: "the router did not take the frame; send it again", Ref: ref})
		}
	}
}

// fromAgent hands in to the router, waiting at most InputTimeout for room in its inbox: a
// stuck router must not keep the reader from reading (pongs, the client's close) for ever.
func (c *agentConn) fromAgent(in AgentInput) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.g.o.InputTimeout)
	defer cancel()
	return c.ref.FromAgent(ctx, in)
}

// readFailed ends the connection after a failed read and says why.
func (c *agentConn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		c.g.metrics.badFrames.WithLabelValues(badFrameTooLarge).Inc()
		c.close(websocket.CloseMessageTooBig, "frame too large", discTooLarge)
	case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived):
		c.close(websocket.CloseNormalClosure, "", discClientClosed)
	case errors.As(err, &ne) && ne.Timeout():
		c.close(websocket.CloseGoingAway, "no heartbeat", discHeartbeat)
	default:
		c.close(websocket.CloseAbnormalClosure, "", discReadFailed)
	}
}

func (c *agentConn) bad(fe *FrameError, ref string) {
	c.g.metrics.badFrames.WithLabelValues(fe.Reason).Inc()
	c.reply(errorFrame{Type: "error", Code: errCodeBadFrame, Reason: routing.Reason(fe.Reason), Message: fe.Message, Ref: ref})
}

// wireTypeOf is a server frame's type.
func wireTypeOf(f any) string {
	switch v := f.(type) {
	case helloFrame:
		return v.Type
	case snapshotFrame:
		return v.Type
	case offerFrame:
		return v.Type
	case stateFrame:
		return v.Type
	case interactionFrame:
		return v.Type
	case consoleFrame:
		return v.Type
	case errorFrame:
		return v.Type
	}
	return "unknown"
}

// gatewayMetrics are the gateway's metrics (names reserved in agents.go). Labels are closed
// sets: directions, frame types and reasons, never user ids.
type gatewayMetrics struct {
	connected   prometheus.Gauge
	frames      *prometheus.CounterVec
	out         map[string]prometheus.Counter // frames{direction="out"} by type, read-only
	badFrames   *prometheus.CounterVec
	refused     *prometheus.CounterVec
	disconnects *prometheus.CounterVec
}

func newGatewayMetrics(reg prometheus.Registerer) *gatewayMetrics {
	f := promauto.With(reg)
	m := &gatewayMetrics{
		connected: f.NewGauge(prometheus.GaugeOpts{Name: "agents_connected",
			Help: "Agents with a live websocket to the gateway."}),
		frames: f.NewCounterVec(prometheus.CounterOpts{Subsystem: "gateway", Name: "frames_total",
			Help: "Agent websocket frames, by direction (in, out) and message type."}, []string{"direction", "type"}),
		badFrames: f.NewCounterVec(prometheus.CounterOpts{Subsystem: "gateway", Name: "bad_frames_total",
			Help: "Agent frames refused, by reason."}, []string{"reason"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{Subsystem: "gateway", Name: "refused_total",
			Help: "Agent websocket upgrades refused, by reason (origin, no_token, bad_token, expired_token...)."}, []string{"reason"}),
		disconnects: f.NewCounterVec(prometheus.CounterOpts{Subsystem: "gateway", Name: "disconnects_total",
			Help: "Agent websockets ended, by reason (replaced, slow, heartbeat, client_closed...)."}, []string{"reason"}),
	}
	for t := range clientTypes {
		m.frames.WithLabelValues("in", t)
	}
	m.out = map[string]prometheus.Counter{}
	for _, t := range []string{"hello", "snapshot", "offer", "state", "interaction", "console", "error", "unknown"} {
		m.out[t] = m.frames.WithLabelValues("out", t)
	}
	for _, r := range badFrameReasons {
		m.badFrames.WithLabelValues(r)
	}
	for _, r := range refusedReasons {
		m.refused.WithLabelValues(r)
	}
	for _, r := range discReasons {
		m.disconnects.WithLabelValues(r)
	}
	return m
}

// outFrame is the counter of frames of f's type written (no label lookup per frame).
func (m *gatewayMetrics) outFrame(f any) prometheus.Counter {
	return m.out[wireTypeOf(f)]
}
