package salesforce

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/jwt"
	"golang.org/x/sync/singleflight"
)

// Grant is an OAuth 2.0 flow the token source can use.
type Grant string

// The grants Salesforce offers a server-side integration.
const (
	// GrantJWTBearer signs an RS256 assertion (iss = client id, sub =
	// username, aud = Audience) with PrivateKey. No secret is sent.
	GrantJWTBearer Grant = "jwt-bearer"
	// GrantClientCredentials sends the client id and secret; the token
	// acts as the connected app's "run as" user.
	GrantClientCredentials Grant = "client-credentials"
	// GrantPassword sends client id, secret, username and password
	// (with the security token appended when the org requires one).
	GrantPassword Grant = "password"
)

// DefaultLoginURL is Salesforce's production login host.
const DefaultLoginURL = "https://login.salesforce.com"

// TokenOptions configures a TokenSource.
type TokenOptions struct {
	// Grant picks the OAuth flow. Required.
	Grant Grant
	// LoginURL is the authorization server: login.salesforce.com,
	// test.salesforce.com or the org's My Domain. The token endpoint is
	// LoginURL + "/services/oauth2/token". Default DefaultLoginURL.
	LoginURL string
	// Audience is the JWT aud claim (GrantJWTBearer only). Salesforce accepts only
	// https://login.salesforce.com, https://test.salesforce.com or an Experience Cloud site URL,
	// whatever host the token request goes to; the default follows the login host: a sandbox
	// (test.salesforce.com, *.sandbox.my.salesforce.com) gives test, any other *.salesforce.com
	// host (login, My Domain) gives login, and any other host (a site, the emulator) is its own
	// audience.
	Audience string
	// ClientID is the connected app's consumer key.
	ClientID string
	// ClientSecret is the consumer secret (client credentials, password).
	ClientSecret string
	// Username is the user to act as (JWT bearer, password).
	Username string
	// Password is the user's password plus security token (password).
	Password string
	// PrivateKey is the PEM (PKCS#1 or PKCS#8) RSA key whose certificate
	// is uploaded to the connected app (JWT bearer).
	PrivateKey []byte
	// HTTPClient carries the token requests. Default http.DefaultClient;
	// pass the same client the REST client and the stream use.
	HTTPClient *http.Client
	// Registerer receives salesforce_token_refreshes_total.
	// Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger logs token refreshes (never the token). Nil discards.
	Logger *slog.Logger
}

// String describes the options without their secrets.
func (o TokenOptions) String() string {
	return fmt.Sprintf("salesforce.TokenOptions{Grant: %s, LoginURL: %q, ClientID: %q, Username: %q, secrets: <redacted>}",
		o.Grant, o.LoginURL, o.ClientID, o.Username)
}

// GoString hides the secrets from %#v too.
func (o TokenOptions) GoString() string { return o.String() }

// LogValue hides the client secret, the password and the private key.
func (o TokenOptions) LogValue() slog.Value {
	return slog.GroupValue(slog.String("grant", string(o.Grant)), slog.String("login_url", o.LoginURL),
		slog.String("client_id", o.ClientID), slog.String("username", o.Username))
}

// Token is an access token and the org instance it belongs to. Its String
// and LogValue never print the access token.
type Token struct {
	// AccessToken is the bearer token (a session id).
	AccessToken string
	// InstanceURL is the org's API host, e.g. https://acme.my.salesforce.com.
	InstanceURL string
	// ID is the identity URL (https://login.salesforce.com/id/<org>/<user>).
	ID string
}

// String prints the instance and hides the access token.
func (t Token) String() string {
	return fmt.Sprintf("salesforce.Token{InstanceURL: %q, AccessToken: <secret>}", t.InstanceURL)
}

// GoString hides the access token from %#v too.
func (t Token) GoString() string { return t.String() }

// LogValue hides the access token from slog.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("instance_url", t.InstanceURL))
}

// TokenSource gets and caches an access token for one of the three grants.
//
// Salesforce sends no expiry, so a token is used until it is rejected: the
// REST client, on HTTP 401 or INVALID_SESSION_ID, and the stream, on
// 401::Authentication invalid, call Invalidate with the token they used.
// The next Token call then fetches a new one. Fetches are single-flight:
// however many goroutines ask while no token is cached, one token request
// is made (golang.org/x/sync/singleflight) and all of them get its result.
type TokenSource struct {
	opts      TokenOptions
	fetch     func(ctx context.Context) (*oauth2.Token, error)
	refreshes *prometheus.CounterVec
	log       *slog.Logger
	// fetchTimeout bounds one token request, whatever the callers' contexts: a token
	// endpoint that never answers must not hold every caller forever.
	fetchTimeout time.Duration

	group singleflight.Group
	mu    sync.Mutex
	tok   *Token
}

// defaultTokenFetchTimeout bounds one token request.
const defaultTokenFetchTimeout = time.Minute

// NewTokenSource checks opts and returns a TokenSource. It makes no request.
func NewTokenSource(opts TokenOptions) (*TokenSource, error) {
	if opts.LoginURL == "" {
		opts.LoginURL = DefaultLoginURL
	}
	opts.LoginURL = strings.TrimRight(opts.LoginURL, "/")
	if u, err := url.Parse(opts.LoginURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("check login url %q: want an http(s) URL", opts.LoginURL)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ClientID == "" {
		return nil, errors.New("check token options: client id is required")
	}
	tokenURL := opts.LoginURL + "/services/oauth2/token"
	ts := &TokenSource{
		opts: opts, log: opts.Logger.With("component", "salesforce_token"),
		fetchTimeout: defaultTokenFetchTimeout,
	}
	switch opts.Grant {
	case GrantJWTBearer:
		if opts.Username == "" || len(opts.PrivateKey) == 0 {
			return nil, errors.New("check token options: the jwt-bearer grant needs a username and a private key")
		}
		aud := opts.Audience
		if aud == "" {
			aud = defaultAudience(opts.LoginURL)
		}
		cfg := &jwt.Config{
			Email:      opts.ClientID,
			Subject:    opts.Username,
			PrivateKey: opts.PrivateKey,
			TokenURL:   tokenURL,
			Audience:   aud,
			Expires:    3 * time.Minute,
		}
		// Parse the key now so a bad key is a configuration error, not a
		// failure at first use.
		if _, err := parseRSAKey(opts.PrivateKey); err != nil {
			return nil, fmt.Errorf("check token options: parse private key: %w", err)
		}
		ts.fetch = func(ctx context.Context) (*oauth2.Token, error) { return cfg.TokenSource(ctx).Token() }
	case GrantClientCredentials:
		if opts.ClientSecret == "" {
			return nil, errors.New("check token options: the client-credentials grant needs a client secret")
		}
		cfg := &clientcredentials.Config{
			ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, TokenURL: tokenURL,
			AuthStyle: oauth2.AuthStyleInParams,
		}
		ts.fetch = cfg.Token
	case GrantPassword:
		if opts.ClientSecret == "" || opts.Username == "" || opts.Password == "" {
			return nil, errors.New("check token options: the password grant needs a client secret, a username and a password")
		}
		cfg := &oauth2.Config{
			ClientID: opts.ClientID, ClientSecret: opts.ClientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		}
		ts.fetch = func(ctx context.Context) (*oauth2.Token, error) {
			return cfg.PasswordCredentialsToken(ctx, opts.Username, opts.Password)
		}
	default:
		return nil, fmt.Errorf("check token options: unknown grant %q (want %s, %s or %s)", opts.Grant, GrantJWTBearer, GrantClientCredentials, GrantPassword)
	}
	refreshes, err := newTokenMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("create token source: %w", err)
	}
	ts.refreshes = refreshes
	return ts, nil
}

// Token returns the cached token, or fetches one. Concurrent callers share one fetch, which
// runs to its own deadline whatever happens to the context of the caller that started it; a
// caller whose ctx ends stops waiting.
func (ts *TokenSource) Token(ctx context.Context) (Token, error) {
	if t, ok := ts.cached(); ok {
		return t, nil
	}
	ch := ts.group.DoChan("token", func() (any, error) {
		if t, ok := ts.cached(); ok {
			return t, nil
		}
		t, err := ts.doFetch(context.WithoutCancel(ctx))
		if err == nil {
			ts.mu.Lock()
			ts.tok = &t
			ts.mu.Unlock()
		}
		return t, err
	})
	select {
	case <-ctx.Done():
		return Token{}, fmt.Errorf("wait for salesforce token: %w", ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return Token{}, r.Err
		}
		return r.Val.(Token), nil
	}
}

func (ts *TokenSource) cached() (Token, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok == nil {
		return Token{}, false
	}
	return *ts.tok, true
}

// String describes the source without its secrets or token.
func (ts *TokenSource) String() string {
	return "salesforce.TokenSource{" + strings.TrimSuffix(strings.TrimPrefix(ts.opts.String(), "salesforce.TokenOptions{"), "}") + "}"
}

// GoString hides the secrets from %#v too.
func (ts *TokenSource) GoString() string { return ts.String() }

// LogValue logs the options without their secrets.
func (ts *TokenSource) LogValue() slog.Value { return ts.opts.LogValue() }

// Invalidate drops the cached token if it is still stale (the token a
// request was rejected with). Invalidating a token that has already been
// replaced does nothing, so N requests failing with the same old token
// cause one refresh, not N.
func (ts *TokenSource) Invalidate(stale Token) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok != nil && ts.tok.AccessToken == stale.AccessToken {
		ts.tok = nil
		ts.log.Info("salesforce token invalidated", "instance_url", stale.InstanceURL)
	}
}

func (ts *TokenSource) doFetch(ctx context.Context) (Token, error) {
	ctx, cancel := context.WithTimeout(ctx, ts.fetchTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, ts.opts.HTTPClient)
	ot, err := ts.fetch(ctx)
	if err != nil {
		ts.refreshes.WithLabelValues("error").Inc()
		return Token{}, fmt.Errorf("get salesforce token (%s grant): %w", ts.opts.Grant, tokenError(err))
	}
	t := Token{AccessToken: ot.AccessToken}
	if v, ok := ot.Extra("instance_url").(string); ok {
		t.InstanceURL = strings.TrimRight(v, "/")
	}
	if v, ok := ot.Extra("id").(string); ok {
		t.ID = v
	}
	if t.AccessToken == "" || t.InstanceURL == "" {
		ts.refreshes.WithLabelValues("error").Inc()
		return Token{}, fmt.Errorf("get salesforce token (%s grant): response lacks access_token or instance_url", ts.opts.Grant)
	}
	if u, err := url.Parse(t.InstanceURL); err != nil || u.Host == "" {
		ts.refreshes.WithLabelValues("error").Inc()
		return Token{}, fmt.Errorf("get salesforce token (%s grant): bad instance_url %q", ts.opts.Grant, t.InstanceURL)
	}
	ts.refreshes.WithLabelValues("success").Inc()
	ts.log.Info("salesforce token obtained", "grant", string(ts.opts.Grant), "instance_url", t.InstanceURL)
	return t, nil
}

// tokenError turns x/oauth2's errors into a TokenError. The jwt package
// fills only the response and body, so the body is parsed here. Context
// and transport errors pass through unchanged.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	te := &TokenError{Code: re.ErrorCode, Description: re.ErrorDescription}
	if re.Response != nil {
		te.Status = re.Response.StatusCode
	}
	if te.Code == "" {
		var body struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		if json.Unmarshal(re.Body, &body) == nil && body.Error != "" {
			te.Code, te.Description = body.Error, body.ErrorDescription
		} else {
			te.Code = "unexpected_response"
		}
	}
	return te
}

// parseRSAKey accepts a PEM block holding a PKCS#1 or PKCS#8 RSA key, as
// x/oauth2/jwt does.
func parseRSAKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("neither a PKCS#1 nor a PKCS#8 key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key (Salesforce accepts RS256 only)")
	}
	return rk, nil
}

// defaultAudience is the JWT aud claim Salesforce expects for a login URL (see
// TokenOptions.Audience).
func defaultAudience(loginURL string) string {
	u, err := url.Parse(loginURL)
	if err != nil || u.Host == "" {
		return loginURL
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case host == "test.salesforce.com" || strings.HasSuffix(host, ".sandbox.my.salesforce.com"):
		return "https://test.salesforce.com"
	case host == "salesforce.com" || strings.HasSuffix(host, ".salesforce.com"):
		return "https://login.salesforce.com"
	default:
		return strings.TrimRight(loginURL, "/")
	}
}
