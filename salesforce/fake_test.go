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

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/require"
)

// fakeOrg is a minimal Salesforce for unit tests that need exact control
// of the responses: a token endpoint and whatever REST handlers a test
// mounts. The emulator-backed tests cover the real thing.
type fakeOrg struct {
	t      *testing.T
	srv    *httptest.Server
	mux    *http.ServeMux
	tokens atomic.Int64 // token requests served
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

// recordingTimer is a backoff.Timer that fires at once and records the
// waits it was asked for, so retry tests never sleep.
type recordingTimer struct {
	mu    sync.Mutex
	waits []time.Duration
	c     chan time.Time
}

func (r *recordingTimer) Start(d time.Duration) {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	if r.c == nil {
		r.c = make(chan time.Time, 1)
	}
	r.c <- time.Time{}
}
func (r *recordingTimer) Stop() {}
func (r *recordingTimer) C() <-chan time.Time {
	if r.c == nil {
		r.c = make(chan time.Time, 1)
	}
	return r.c
}

func (r *recordingTimer) Waits() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

// testClient builds a password-grant client against f with an instant
// retry timer. Each call to Do in a test goroutine gets its own timer, so
// the timer here is only safe for sequential requests.
func testClient(t *testing.T, f *fakeOrg, mod func(*Options)) (*Client, *recordingTimer) {
	t.Helper()
	ts, err := NewTokenSource(TokenOptions{
		Grant: GrantPassword, LoginURL: f.srv.URL, ClientID: "cid", ClientSecret: "s3cret-client",
		Username: "u@example.com", Password: "p4ssword", HTTPClient: f.srv.Client(),
	})
	require.NoError(t, err)
	return recordingClient(t, ts, f.srv.Client(), mod)
}

// recordingClient builds a client on ts whose retries wait on a
// recordingTimer (they fire at once) with an un-jittered 1 ms backoff.
func recordingClient(t *testing.T, ts *TokenSource, hc *http.Client, mod func(*Options)) (*Client, *recordingTimer) {
	t.Helper()
	timer := &recordingTimer{}
	opts := Options{
		Tokens: ts, HTTPClient: hc, APIVersion: "63.0", timer: timer,
		newBackOff: func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval = time.Millisecond
			b.RandomizationFactor = 0
			return b
		},
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	require.NoError(t, err)
	return c, timer
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
