package salesforce

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// fakeOrg is a minimal Salesforce for unit tests that need exact control
// of the responses: a token endpoint and whatever REST handlers a test
// mounts. The emulator-backed tests cover the real thing.
type fakeOrg struct {
	t       *testing.T
	srv     *httptest.Server
	mux     *http.ServeMux
	tokens  atomic.Int64 // token requests served
	arrived atomic.Int64 // token requests received
	// token is the access token currently valid; tokenN numbers them.
	mu    sync.Mutex
	token string
	// tokenGate, when set, blocks token responses until closed.
	tokenGate chan struct{}
}

func newFakeOrg(t *testing.T) *fakeOrg {
	t.Helper()
	f := &fakeOrg{t: t, mux: http.NewServeMux()}
	f.mux.HandleFunc("POST /services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		f.arrived.Add(1)
		if f.tokenGate != nil {
			<-f.tokenGate
		}
		n := f.tokens.Add(1)
		tok := "00Dfake!token-" + string(rune('A'+n-1))
		f.mu.Lock()
		f.token = tok
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"` + tok + `","instance_url":"` + f.srv.URL + `","id":"` + f.srv.URL + `/id/00D/005","token_type":"Bearer","issued_at":"1700000000000"}`))
	})
	f.srv = httptest.NewServer(f.mux)
	t.Cleanup(f.srv.Close)
	return f
}

// authorized checks the bearer token and answers 401 INVALID_SESSION_ID
// when it is not the current one.
func (f *fakeOrg) authorized(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	cur := f.token
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+cur || cur == "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`))
		return false
	}
	return true
}

// expire makes the current token invalid (as a session timeout would).
func (f *fakeOrg) expire() {
	f.mu.Lock()
	f.token = "expired"
	f.mu.Unlock()
}

// requestLog is a RoundTripper that records when each request was sent. Inside a
// testing/synctest bubble time stands still during network I/O and jumps over every wait, so
// the gaps between requests are exactly the waits the client chose.
type requestLog struct {
	rt http.RoundTripper
	mu sync.Mutex
	at []time.Time
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.at = append(l.at, time.Now())
	l.mu.Unlock()
	return l.rt.RoundTrip(r)
}

// Waits returns the non-zero gaps between consecutive requests (in a bubble: the waits).
func (l *requestLog) Waits() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(l.at); i++ {
		if d := l.at[i].Sub(l.at[i-1]); d > 0 {
			out = append(out, d)
		}
	}
	return out
}

// bubbleClient is an HTTP client a synctest bubble can use: no idle keep-alive connection is
// left blocked on the network, which would keep the bubble's clock from moving.
func bubbleClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// testClient builds a password-grant client against f whose requests are recorded.
func testClient(t *testing.T, f *fakeOrg, mod func(*Options)) (*Client, *requestLog) {
	t.Helper()
	hc := bubbleClient()
	ts, err := NewTokenSource(TokenOptions{
		Grant: GrantPassword, LoginURL: f.srv.URL, ClientID: "cid", ClientSecret: "s3cret-client",
		Username: "u@example.com", Password: "p4ssword", HTTPClient: hc,
	})
	require.NoError(t, err)
	return recordingClient(t, ts, hc, mod)
}

// recordingClient builds a client on ts whose requests (on hc's transport) are recorded.
func recordingClient(t *testing.T, ts *TokenSource, hc *http.Client, mod func(*Options)) (*Client, *requestLog) {
	t.Helper()
	log := &requestLog{rt: hc.Transport}
	if log.rt == nil {
		log.rt = http.DefaultTransport
	}
	opts := Options{Tokens: ts, HTTPClient: &http.Client{Transport: log}, APIVersion: "63.0"}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	require.NoError(t, err)
	return c, log
}

// retries counts the requests c sent again after a wait (session refreshes excluded).
func retries(t *testing.T, c *Client) int {
	t.Helper()
	ch := make(chan prometheus.Metric, 100)
	c.metrics.retries.Collect(ch)
	close(ch)
	n := 0.0
	for m := range ch {
		var pb dto.Metric
		require.NoError(t, m.Write(&pb))
		if pb.GetLabel()[1].GetValue() != "session" {
			n += pb.GetCounter().GetValue()
		}
	}
	return int(n)
}

// testKey returns a fresh RSA key as PKCS#8 PEM.
func testKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func runtimeGosched() { runtime.Gosched() }
