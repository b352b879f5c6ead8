package connector

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loadProxyEnv, set to the emulator's URL, makes the test binary BenchmarkDaemonLoad's
// measuring proxy instead of running tests (TestMain): psrProxy in front of a forwarder to
// that URL. It runs in a process of its own, between the daemon and the emulator, like the
// network edge of a real org: its time stamps are taken in a process that is idle between
// requests, so they do not wait for the emulator's busy process to be scheduled (they did:
// up to 24 ms of a request's arrival, measured against the daemon's execution trace). What
// the emulator takes to answer is inside the call, where it belongs.
const loadProxyEnv = "OMNIROUTE_BENCH_LOAD_PROXY"

// loadProxyProfiledEnv, set to 1 beside loadProxyEnv, makes the proxy keep every REST call.
const loadProxyProfiledEnv = "OMNIROUTE_BENCH_LOAD_PROXY_PROFILED"

// runLoadProxy is the proxy process: it serves psrProxy, forwarding to target, on a loopback
// port it prints ("listening <addr>"), with its records under /bench/. It returns when stdin
// ends (the benchmark's process is gone).
func runLoadProxy(target string, profiled bool, stdin io.Reader, stdout io.Writer) error {
	// The instrument's own collections are fewer: its heap is a few MiB of stamps.
	debug.SetGCPercent(400)
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	fw := &forwarder{target: u, hc: &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true},
		// A redirect is an answer like any other: the daemon's client follows it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	p := &psrProxy{lat: &latencyProxy{next: fw, split: true, rng: mrand.New(mrand.NewPCG(1, 2))}, seen: map[string]time.Time{},
		kinds: map[string]int{}, delivered: map[string]time.Time{}}
	if profiled {
		p.profiled, p.calls = true, []restCall{}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bench/seen", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprint(w, p.n.Load())
	})
	mux.HandleFunc("POST /bench/reset", func(w http.ResponseWriter, _ *http.Request) {
		p.lat.calls.Store(0)
		p.conns.Store(0)
		p.mu.Lock()
		clear(p.kinds)
		if p.profiled { // the list stays non-nil
			p.calls = p.calls[:0]
		}
		p.mu.Unlock()
	})
	mux.HandleFunc("GET /bench/records", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.records())
	})
	mux.Handle("/", p)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			p.conns.Add(1)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	if _, err := fmt.Fprintf(stdout, "listening %s\n", ln.Addr()); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, stdin)
	return srv.Close()
}

// forwarder passes a request on to target and its answer back, each whole: the proxy's
// stamps need whole bodies anyway, and a CometD long poll's answer is one response. Like any
// proxy, it drops the hop-by-hop headers both ways.
type forwarder struct {
	target *url.URL
	hc     *http.Client
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "load proxy: read request: "+err.Error(), http.StatusBadGateway)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, f.target.String()+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "load proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	dropHopHeaders(out.Header)
	out.Host = r.Host // the org's URLs (instance_url, CometD) name the proxy
	resp, err := f.hc.Do(out)
	if err != nil {
		http.Error(w, "load proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, "load proxy: read response: "+err.Error(), http.StatusBadGateway)
		return
	}
	dropHopHeaders(resp.Header)
	writeWhole(w, resp.StatusCode, resp.Header, data)
}

// hopHeaders are the hop-by-hop headers (RFC 9110 section 7.6.1), as net/http/httputil's
// ReverseProxy lists them: they are for one connection, so a proxy does not pass them on.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// dropHopHeaders removes from h the hop-by-hop headers and those its Connection names.
func dropHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// writeWhole writes an answer and sends it at once: with its length, flushed before the
// handler goes on to its bookkeeping (its stamps, its scans), so that the answer's last bytes
// do not wait for them.
func writeWhole(w http.ResponseWriter, status int, header http.Header, body []byte) {
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_ = http.NewResponseController(w).Flush()
}

// proxyRecords is what the proxy noted, times as Unix nanoseconds (the two processes share
// the wall clock).
type proxyRecords struct {
	Calls     int64            `json:"calls"`
	Conns     int64            `json:"conns"`
	Kinds     map[string]int   `json:"kinds"`
	Seen      map[string]int64 `json:"seen"`
	Delivered map[string]int64 `json:"delivered"`
	Inserts   [][2]int64       `json:"inserts"`
	Rest      []proxyCall      `json:"rest,omitempty"`
}

type proxyCall struct {
	Kind  string `json:"kind"`
	Start int64  `json:"start"`
	End   int64  `json:"end"`
}

func (p *psrProxy) records() proxyRecords {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := proxyRecords{Calls: p.lat.calls.Load(), Conns: p.conns.Load(), Kinds: map[string]int{}, Seen: map[string]int64{}, Delivered: map[string]int64{}}
	for k, n := range p.kinds {
		r.Kinds[k] = n
	}
	for id, t := range p.seen {
		r.Seen[id] = t.UnixNano()
	}
	for id, t := range p.delivered {
		r.Delivered[id] = t.UnixNano()
	}
	for _, s := range p.inserts {
		r.Inserts = append(r.Inserts, [2]int64{s.start.UnixNano(), s.end.UnixNano()})
	}
	for _, c := range p.calls {
		r.Rest = append(r.Rest, proxyCall{c.kind, c.start.UnixNano(), c.end.UnixNano()})
	}
	return r
}

// loadProxy is the benchmark's side of the proxy process.
type loadProxy struct {
	url string
	hc  *http.Client
}

// startLoadProxy starts the proxy process in front of target and waits for its address.
func startLoadProxy(b *testing.B, target string, profiled bool) *loadProxy {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadProxyEnv+"="+target)
	if profiled {
		cmd.Env = append(cmd.Env, loadProxyProfiledEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(b, err)
	out, err := cmd.StdoutPipe()
	require.NoError(b, err)
	exited, err := startChild(cmd)
	require.NoError(b, err)
	p := &loadProxy{hc: &http.Client{Timeout: 30 * time.Second}}
	b.Cleanup(func() {
		_ = in.Close()
		// The proxy exits when its stdin ends.
		if err := <-exited; err != nil {
			b.Errorf("load proxy process: %v", err)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(b, err, "the proxy process prints its address")
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	require.True(b, ok, "proxy process: %q", line)
	p.url = "http://" + addr
	return p
}

func (p *loadProxy) get(b *testing.B, path string) []byte {
	resp, err := p.hc.Get(p.url + path)
	require.NoError(b, err)
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	require.NoError(b, err)
	require.Equal(b, http.StatusOK, resp.StatusCode, "%s: %s", path, data)
	return data
}

// reset forgets the REST calls counted so far.
func (p *loadProxy) reset(b *testing.B) {
	resp, err := p.hc.Post(p.url+"/bench/reset", "", nil)
	require.NoError(b, err)
	_ = resp.Body.Close()
	require.Equal(b, http.StatusOK, resp.StatusCode)
}

// seen is how many PSRs have been named in an insert.
func (p *loadProxy) seen(b *testing.B) int64 {
	var n int64
	require.NoError(b, json.Unmarshal(p.get(b, "/bench/seen"), &n))
	return n
}

func (p *loadProxy) records(b *testing.B) proxyRecords {
	var r proxyRecords
	require.NoError(b, json.Unmarshal(p.get(b, "/bench/records"), &r))
	return r
}

// psrProxy is latencyProxy that also notes when each PSR first arrives in the body of a
// POST (the AgentWork inserts, single or sObject Collections).
type psrProxy struct {
	lat  *latencyProxy
	mu   sync.Mutex
	seen map[string]time.Time
	n    atomic.Int64
	// conns counts the connections opened to the proxy.
	conns atomic.Int64
	// kinds counts REST requests by method and path (ids and query text normalised).
	kinds map[string]int
	// delivered: when each PSR was first named in a CometD response written to the daemon
	// (the daemon's stream handler has the event then); inserts: the AgentWork POSTs, from
	// arrival to response written.
	delivered map[string]time.Time
	inserts   []span
	// calls: every REST call, when the load is profiled (nil otherwise). profiled is set
	// before the proxy serves, and read without mu.
	calls    []restCall
	profiled bool
}

// restCall is a REST call at the proxy.
type restCall struct {
	kind string
	span
}

// span is one request at the proxy, from arrival to response written.
type span struct{ start, end time.Time }

// bodyRecorder keeps a copy of a response body.
type bodyRecorder struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (r *bodyRecorder) Write(p []byte) (int, error) {
	r.buf.Write(p)
	return r.ResponseWriter.Write(p)
}

func (r *bodyRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

var psrID = regexp.MustCompile(`0JR[0-9A-Za-z]{15}`)

var idInPath = regexp.MustCompile(`/[0-9A-Za-z]{15}([0-9A-Za-z]{3})?(/|$)`)

// requestKind names a REST request for the breakdown: method, path with ids as {id}, and a
// query's FROM clause onwards.
func requestKind(r *http.Request) string {
	k := r.Method + " " + idInPath.ReplaceAllString(r.URL.Path, "/{id}$2")
	if q := r.URL.Query().Get("q"); q != "" {
		if _, from, ok := strings.Cut(q, " FROM "); ok {
			k += " FROM " + idList.ReplaceAllString(from, "(…)")
		}
	}
	return k
}

var idList = regexp.MustCompile(`\('[^)]*\)`)

var psrInBody = regexp.MustCompile(`"PendingServiceRoutingId"\s*:\s*"([0-9A-Za-z]+)"`)

func (p *psrProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The request's arrival: taken first, before the proxy's own lock and scans.
	at := time.Now()
	if strings.HasPrefix(r.URL.Path, "/cometd/") {
		rec := &bodyRecorder{ResponseWriter: w}
		p.lat.ServeHTTP(rec, r)
		at := time.Now()
		ids := psrID.FindAllString(rec.buf.String(), -1)
		p.mu.Lock()
		for _, id := range ids {
			if _, ok := p.delivered[id]; !ok {
				p.delivered[id] = at
			}
		}
		p.mu.Unlock()
		return
	}
	if strings.HasPrefix(r.URL.Path, "/services/data/") {
		kind := requestKind(r)
		p.mu.Lock()
		p.kinds[kind]++
		p.mu.Unlock()
		if p.profiled {
			defer func() {
				p.mu.Lock()
				p.calls = append(p.calls, restCall{kind, span{at, time.Now()}})
				p.mu.Unlock()
			}()
		}
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/services/data/") {
		if strings.Contains(r.URL.Path, "/sobjects/AgentWork") || strings.HasSuffix(r.URL.Path, "/composite/sobjects") {
			defer func() {
				p.mu.Lock()
				p.inserts = append(p.inserts, span{at, time.Now()})
				p.mu.Unlock()
			}()
		}
		body, err := io.ReadAll(r.Body)
		if err == nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			ms := psrInBody.FindAllSubmatch(body, -1)
			p.mu.Lock()
			for _, m := range ms {
				id := string(m[1])
				if _, ok := p.seen[id]; !ok {
					p.seen[id] = at
					p.n.Add(1)
				}
			}
			p.mu.Unlock()
		}
	}
	p.lat.ServeHTTP(w, r)
}

// serveLoadProxy runs the proxy process's code in this process, in front of target, until t
// ends, and returns its address.
func serveLoadProxy(t *testing.T, target string, profiled bool) string {
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- runLoadProxy(target, profiled, stdinR, stdoutW) }()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	require.NoError(t, err)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	require.True(t, ok, line)
	t.Cleanup(func() {
		require.NoError(t, stdinW.Close())
		require.NoError(t, <-done)
	})
	return addr
}

// TestLoadProxyForwardsWhole: the load proxy passes each request on as the daemon sent it
// (method, path and query, body, headers with the cookies, the Host the org's URLs name) and
// each answer back as the org gave it (status, headers with every Set-Cookie, body), a
// redirect included: the daemon's client follows it, not the proxy. Hop-by-hop headers (those
// RFC 9110 names and those Connection names) stop at the proxy both ways. A PSR named in an
// insert's body is stamped.
func TestLoadProxyForwardsWhole(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, uri, host, cookie, header, body string
		hop                                     []string
	}
	// The hop-by-hop headers a request or an answer carries here: the standard ones and one
	// that Connection names.
	hopHeaders := []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade", "X-Hop"}
	hopIn := func(h http.Header) []string {
		var in []string
		for _, k := range hopHeaders {
			if _, ok := h[k]; ok {
				in = append(in, k)
			}
		}
		return in
	}
	got := make(chan seen, 10)
	org := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("Cookie"), r.Header.Get("X-Test"), string(body), hopIn(r.Header)}
		if r.URL.Path == "/cometd/moved" {
			http.Redirect(w, r, "/cometd/elsewhere", http.StatusFound)
			return
		}
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "answer")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("Upgrade", "foo/1")
		w.Header().Add("Set-Cookie", "BAYEUX_BROWSER=b1; Path=/")
		w.Header().Add("Set-Cookie", "other=o1; Path=/")
		w.Header().Set("X-Answer", "a")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("answer to " + string(body)))
	}))
	defer org.Close()

	addr := serveLoadProxy(t, org.URL, false)
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/cometd/62.0/connect?a=1&b=%2F", strings.NewReader(`[{"channel":"/meta/connect"}]`))
	require.NoError(t, err)
	req.Header.Set("Cookie", "BAYEUX_BROWSER=b0; other=o0")
	req.Header.Set("X-Test", "t")
	req.Header.Set("Connection", "keep-alive, X-Hop")
	req.Header.Set("X-Hop", "request")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Proxy-Authorization", "Basic eDp5")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Upgrade", "foo/1")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, seen{http.MethodPost, "/cometd/62.0/connect?a=1&b=%2F", addr, "BAYEUX_BROWSER=b0; other=o0", "t", `[{"channel":"/meta/connect"}]`, nil}, <-got,
		"no hop-by-hop header reaches the org")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Empty(t, hopIn(resp.Header), "no hop-by-hop header of the org's reaches the daemon")
	require.Equal(t, []string{"BAYEUX_BROWSER=b1; Path=/", "other=o1; Path=/"}, resp.Header.Values("Set-Cookie"))
	require.Equal(t, "a", resp.Header.Get("X-Answer"))
	require.Equal(t, `answer to [{"channel":"/meta/connect"}]`, string(body))

	resp, err = hc.Get("http://" + addr + "/cometd/moved")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, "/cometd/moved", (<-got).uri)
	require.Equal(t, http.StatusFound, resp.StatusCode, "the redirect is the daemon's to follow")
	require.Equal(t, "/cometd/elsewhere", resp.Header.Get("Location"))

	psr := "0JR000000000001AAA"
	resp, err = hc.Post("http://"+addr+"/services/data/v62.0/composite/sobjects", "application/json",
		strings.NewReader(`{"records":[{"PendingServiceRoutingId":"`+psr+`"}]}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "/services/data/v62.0/composite/sobjects", (<-got).uri)
	// The proxy notes the insert's span once its answer has left (the answer is flushed
	// first): it may come a moment after the daemon has the answer.
	var rec proxyRecords
	require.Eventually(t, func() bool {
		resp, err := hc.Get("http://" + addr + "/bench/records")
		require.NoError(t, err)
		rec = proxyRecords{}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&rec))
		_ = resp.Body.Close()
		return len(rec.Inserts) > 0
	}, 5*time.Second, 5*time.Millisecond)
	require.Contains(t, rec.Seen, psr)
	require.Len(t, rec.Inserts, 1)
	require.Equal(t, rec.Seen[psr], rec.Inserts[0][0], "the insert's arrival is the PSR's")
	require.Empty(t, got, "one request to the org per request to the proxy")

}

// TestLoadProxyResetForgetsCalls: POST /bench/reset forgets the REST calls counted so far,
// their kinds, and, when the load is profiled, the calls kept one by one; the calls after it
// are kept again.
func TestLoadProxyResetForgetsCalls(t *testing.T) {
	t.Parallel()
	org := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("{}"))
	}))
	defer org.Close()
	p := &loadProxy{url: "http://" + serveLoadProxy(t, org.URL, true), hc: &http.Client{Timeout: 30 * time.Second}}
	get := func(path string) {
		resp, err := p.hc.Get(p.url + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	records := func() proxyRecords {
		resp, err := p.hc.Get(p.url + "/bench/records")
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		var r proxyRecords
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		return r
	}
	// A call is kept once its answer has left: it may come a moment after the answer.
	kept := func(n int) proxyRecords {
		var r proxyRecords
		require.Eventually(t, func() bool { r = records(); return len(r.Rest) >= n }, 5*time.Second, 5*time.Millisecond)
		return r
	}

	get("/services/data/v62.0/limits")
	get("/services/data/v62.0/query?q=SELECT+Id+FROM+User")
	r := kept(2)
	require.Len(t, r.Rest, 2)
	require.EqualValues(t, 2, r.Calls)
	require.Len(t, r.Kinds, 2)

	resp, err := p.hc.Post(p.url+"/bench/reset", "", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	r = records()
	require.Zero(t, r.Calls)
	require.Empty(t, r.Kinds)
	require.Empty(t, r.Rest, "the calls before the reset are forgotten")

	get("/services/data/v62.0/limits")
	r = kept(1)
	require.Equal(t, []string{"GET /services/data/v62.0/limits"}, slices.Collect(maps.Keys(r.Kinds)))
	require.Len(t, r.Rest, 1, "the calls after the reset are kept")
	require.Equal(t, "GET /services/data/v62.0/limits", r.Rest[0].Kind)

}
