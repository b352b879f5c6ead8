package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jwtv5 "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestTokenSourceGrants(t *testing.T) {
	t.Parallel()
	key, keyPEM := testKey(t)
	tests := []struct {
		name  string
		opts  TokenOptions
		check func(t *testing.T, form url.Values, base string)
	}{
		{
			name: "jwt bearer",
			opts: TokenOptions{Grant: GrantJWTBearer, ClientID: "cid", Username: "u@example.com", PrivateKey: keyPEM, Audience: "https://aud.example"},
			check: func(t *testing.T, form url.Values, _ string) {
				require.Equal(t, "urn:ietf:params:oauth:grant-type:jwt-bearer", form.Get("grant_type"))
				require.Empty(t, form.Get("client_secret"))
				claims := jwtv5.MapClaims{}
				_, err := jwtv5.ParseWithClaims(form.Get("assertion"), claims, func(tok *jwtv5.Token) (any, error) {
					require.Equal(t, "RS256", tok.Method.Alg())
					return &key.PublicKey, nil
				})
				require.NoError(t, err)
				require.Equal(t, "cid", claims["iss"])
				require.Equal(t, "u@example.com", claims["sub"])
				require.Equal(t, "https://aud.example", claims["aud"])
				_, numeric := claims["exp"].(float64)
				require.True(t, numeric, "exp must be a number, got %T", claims["exp"])
			},
		},
		{
			name: "jwt bearer audience defaults to login url",
			opts: TokenOptions{Grant: GrantJWTBearer, ClientID: "cid", Username: "u@example.com", PrivateKey: keyPEM},
			check: func(t *testing.T, form url.Values, base string) {
				claims := jwtv5.MapClaims{}
				_, err := jwtv5.ParseWithClaims(form.Get("assertion"), claims, func(*jwtv5.Token) (any, error) { return &key.PublicKey, nil })
				require.NoError(t, err)
				require.Equal(t, base, claims["aud"])
			},
		},
		{
			name: "client credentials",
			opts: TokenOptions{Grant: GrantClientCredentials, ClientID: "cid", ClientSecret: "csecret"},
			check: func(t *testing.T, form url.Values, _ string) {
				require.Equal(t, "client_credentials", form.Get("grant_type"))
				require.Equal(t, "cid", form.Get("client_id"))
				require.Equal(t, "csecret", form.Get("client_secret"))
			},
		},
		{
			name: "password",
			opts: TokenOptions{Grant: GrantPassword, ClientID: "cid", ClientSecret: "csecret", Username: "u@example.com", Password: "pw+tok"},
			check: func(t *testing.T, form url.Values, _ string) {
				require.Equal(t, "password", form.Get("grant_type"))
				require.Equal(t, "u@example.com", form.Get("username"))
				require.Equal(t, "pw+tok", form.Get("password"))
				require.Equal(t, "csecret", form.Get("client_secret"))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeOrg(t)
			var form url.Values
			f.mux.HandleFunc("POST /test/services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
				require.NoError(t, r.ParseForm())
				form = r.PostForm
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"access_token":"AT","instance_url":"https://acme.my.salesforce.com/","id":"https://login/id/00D/005"}`))
			})
			opts := tc.opts
			opts.LoginURL = f.srv.URL + "/test"
			opts.HTTPClient = f.srv.Client()
			ts, err := NewTokenSource(opts)
			require.NoError(t, err)
			tok, err := ts.Token(t.Context())
			require.NoError(t, err)
			require.Equal(t, "AT", tok.AccessToken)
			require.Equal(t, "https://acme.my.salesforce.com", tok.InstanceURL)
			require.Equal(t, "https://login/id/00D/005", tok.ID)
			tc.check(t, form, opts.LoginURL)
		})
	}
}

func TestTokenSourceOptionErrors(t *testing.T) {
	t.Parallel()
	_, keyPEM := testKey(t)
	for name, o := range map[string]TokenOptions{
		"no grant":           {ClientID: "c"},
		"unknown grant":      {Grant: "saml", ClientID: "c"},
		"no client id":       {Grant: GrantClientCredentials, ClientSecret: "s"},
		"cc without secret":  {Grant: GrantClientCredentials, ClientID: "c"},
		"password no user":   {Grant: GrantPassword, ClientID: "c", ClientSecret: "s", Password: "p"},
		"jwt no key":         {Grant: GrantJWTBearer, ClientID: "c", Username: "u"},
		"jwt bad key":        {Grant: GrantJWTBearer, ClientID: "c", Username: "u", PrivateKey: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")},
		"jwt no user":        {Grant: GrantJWTBearer, ClientID: "c", PrivateKey: keyPEM},
		"login url not http": {Grant: GrantClientCredentials, ClientID: "c", ClientSecret: "s", LoginURL: "ftp://x"},
	} {
		_, err := NewTokenSource(o)
		require.Error(t, err, name)
	}
}

func TestTokenErrorsAreTypedAndCarryNoSecret(t *testing.T) {
	t.Parallel()
	_, keyPEM := testKey(t)
	for _, grant := range []Grant{GrantJWTBearer, GrantClientCredentials, GrantPassword} {
		t.Run(string(grant), func(t *testing.T) {
			t.Parallel()
			f := newFakeOrg(t)
			f.mux.HandleFunc("POST /bad/services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"authentication failure"}`))
			})
			var logs bytes.Buffer
			reg := prometheus.NewPedanticRegistry()
			ts, err := NewTokenSource(TokenOptions{
				Grant: grant, LoginURL: f.srv.URL + "/bad", HTTPClient: f.srv.Client(),
				ClientID: "cid", ClientSecret: "TOPSECRET-client", Username: "u", Password: "TOPSECRET-pw", PrivateKey: keyPEM,
				Registerer: reg, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			require.NoError(t, err)
			_, err = ts.Token(t.Context())
			var te *TokenError
			require.ErrorAs(t, err, &te)
			require.Equal(t, "invalid_grant", te.Code)
			require.Equal(t, "authentication failure", te.Description)
			require.Equal(t, http.StatusBadRequest, te.Status)
			require.NotContains(t, err.Error(), "TOPSECRET")
			require.NotContains(t, logs.String(), "TOPSECRET")
			require.Equal(t, 1.0, testutil.ToFloat64(ts.refreshes.WithLabelValues("error")))
		})
	}
}

func TestTokenOptionsNeverPrintSecrets(t *testing.T) {
	t.Parallel()
	_, keyPEM := testKey(t)
	o := TokenOptions{Grant: GrantPassword, ClientID: "cid", ClientSecret: "SECRET-1", Username: "u", Password: "SECRET-2", PrivateKey: keyPEM}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("opts", "token_options", o)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", o, o, o, o), logs.String()} {
		require.NotContains(t, s, "SECRET")
		require.NotContains(t, s, "PRIVATE KEY")
		require.Contains(t, s, "cid")
	}
}

func TestTokenStringNeverPrintsTheToken(t *testing.T) {
	t.Parallel()
	tok := Token{AccessToken: "00D!SECRETTOKEN", InstanceURL: "https://x"}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("t", "token", tok)
	for _, s := range []string{tok.String(), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), logs.String()} {
		require.NotContains(t, s, "SECRETTOKEN")
	}
	require.Contains(t, logs.String(), "https://x")
}

// TestTokenSingleFlight: many goroutines ask for a token at once; one
// token request is made and every caller gets its result. Invalidate with
// a stale token is a no-op.
func TestTokenSingleFlight(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	f.tokenGate = make(chan struct{})
	ts, err := NewTokenSource(TokenOptions{Grant: GrantClientCredentials, LoginURL: f.srv.URL, ClientID: "c", ClientSecret: "s", HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	const n = 50
	var wg sync.WaitGroup
	toks := make([]Token, n)
	errs := make([]error, n)
	started := make(chan struct{}, n)
	for i := range n {
		wg.Go(func() {
			started <- struct{}{}
			toks[i], errs[i] = ts.Token(t.Context())
		})
	}
	for range n {
		<-started
	}
	close(f.tokenGate)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, toks[0], toks[i])
	}
	require.Equal(t, int64(1), f.tokens.Load())

	ts.Invalidate(Token{AccessToken: "some-older-token"})
	again, err := ts.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, toks[0], again)
	require.Equal(t, int64(1), f.tokens.Load())

	ts.Invalidate(again)
	fresh, err := ts.Token(t.Context())
	require.NoError(t, err)
	require.NotEqual(t, again.AccessToken, fresh.AccessToken)
	require.Equal(t, int64(2), f.tokens.Load())
}

// TestTokenLeaderCancelled: when the goroutine that started the fetch
// gives up, the fetch goes on and a waiter with a live context gets its token.
func TestTokenLeaderCancelled(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	gate := make(chan struct{})
	f.tokenGate = gate
	ts, err := NewTokenSource(TokenOptions{Grant: GrantClientCredentials, LoginURL: f.srv.URL, ClientID: "c", ClientSecret: "s", HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	leaderCtx, cancel := context.WithCancel(t.Context())
	leaderDone := make(chan error, 1)
	go func() { _, err := ts.Token(leaderCtx); leaderDone <- err }()
	// Wait until the leader's fetch is in flight.
	for f.arrived.Load() == 0 {
		runtimeGosched()
	}
	waiterDone := make(chan error, 1)
	go func() { _, err := ts.Token(t.Context()); waiterDone <- err }()
	cancel()
	require.ErrorIs(t, <-leaderDone, context.Canceled)
	close(gate)
	require.NoError(t, <-waiterDone)
	require.Equal(t, int64(1), f.tokens.Load(), "one token request, not a second one")
}

func TestTokenMissingInstanceURL(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	f.mux.HandleFunc("POST /x/services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "AT"})
	})
	ts, err := NewTokenSource(TokenOptions{Grant: GrantClientCredentials, LoginURL: f.srv.URL + "/x", ClientID: "c", ClientSecret: "s", HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	_, err = ts.Token(t.Context())
	require.ErrorContains(t, err, "instance_url")
	require.False(t, errors.Is(err, context.Canceled))
	require.False(t, strings.Contains(err.Error(), "AT\""))
}

// TestTokenSourceNeverPrintsSecrets: a TokenSource printed with %v, %+v or
// %#v, or logged, shows no secret of its options and no access token.
func TestTokenSourceNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	ts, err := NewTokenSource(TokenOptions{Grant: GrantPassword, LoginURL: f.srv.URL, ClientID: "cid", ClientSecret: "SECRET-1", Username: "u", Password: "SECRET-2", HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	tok, err := ts.Token(t.Context())
	require.NoError(t, err)
	c, err := New(Options{Tokens: ts})
	require.NoError(t, err)
	s, err := NewStream(StreamOptions{Tokens: ts, Channels: []string{psrChannel}})
	require.NoError(t, err)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("ts", "tokens", ts)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", ts, ts, ts), fmt.Sprintf("%v %+v %#v", c, c, c), fmt.Sprintf("%v %+v %#v", s, s, s), logs.String()} {
		require.NotContains(t, out, "SECRET")
		require.NotContains(t, out, tok.AccessToken)
	}
	require.Contains(t, logs.String(), "cid")
}

// TestTokenFetchHasDeadline: a token endpoint that never answers cannot
// hold a caller without a deadline, nor its waiters, forever.
func TestTokenFetchHasDeadline(t *testing.T) {
	t.Parallel()
	f := newFakeOrg(t)
	var arrived atomic.Int64
	f.mux.HandleFunc("POST /hang/services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		_ = r.ParseForm() // read the body, so the server notices the client leaving
		<-r.Context().Done()
	})
	ts, err := NewTokenSource(TokenOptions{Grant: GrantClientCredentials, LoginURL: f.srv.URL + "/hang", ClientID: "c", ClientSecret: "s", HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	// Long enough that the loop below sees the first fetch in flight even on a loaded machine;
	// the loop is bounded all the same, so a miss fails the test instead of hanging it.
	ts.fetchTimeout = time.Second
	errs := make(chan error, 2)
	go func() { _, err := ts.Token(context.Background()); errs <- err }()
	started := time.Now()
	for arrived.Load() == 0 {
		if time.Since(started) > 10*time.Second {
			t.Fatal("the first token fetch never went in flight")
		}
		runtimeGosched()
	}
	go func() { _, err := ts.Token(context.Background()); errs <- err }()
	for range 2 {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(10 * time.Second):
			t.Fatal("Token did not return")
		}
	}
}

func TestDefaultAudience(t *testing.T) {
	t.Parallel()
	tests := []struct{ login, want string }{
		{"https://login.salesforce.com", "https://login.salesforce.com"},
		{"https://acme.my.salesforce.com", "https://login.salesforce.com"},
		{"https://ACME.my.salesforce.com/", "https://login.salesforce.com"},
		{"https://test.salesforce.com", "https://test.salesforce.com"},
		{"https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"},
		{"https://acme.my.site.com/customers/", "https://acme.my.site.com/customers"},
		{"http://127.0.0.1:8089", "http://127.0.0.1:8089"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, defaultAudience(tc.login), tc.login)
	}
}
