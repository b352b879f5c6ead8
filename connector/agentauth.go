package connector

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"golang.org/x/sync/singleflight"
)

// Authentication of the agent websocket, before the upgrade (docs/agent-protocol.md,
// "Authentication"). A token is either the agent's own Salesforce access token, checked with
// the org's OpenID Connect userinfo endpoint and cached, or a short-lived demo token: an HS256
// JWT signed with OMNIROUTE_AGENT_TOKEN_KEY (MintAgentToken). The token comes in the
// Sec-WebSocket-Protocol header, as the subprotocol AgentTokenProtocolPrefix + base64url(token)
// (browsers cannot set headers on a websocket), or in "Authorization: Bearer <token>"; never
// in the query string, which ends up in access logs.

// AgentTokenProtocolPrefix starts the subprotocol that carries a token:
// "omniroute.bearer." + base64url (no padding) of the token.
const AgentTokenProtocolPrefix = "omniroute.bearer."

// Demo tokens.
const (
	// MinAgentTokenKeyLength is the shortest OMNIROUTE_AGENT_TOKEN_KEY accepted (HS256 wants a
	// key at least as long as its 32-byte hash).
	MinAgentTokenKeyLength = 32
	// MaxAgentTokenTTL is the longest a demo token may live: they are for demos, not logins.
	MaxAgentTokenTTL = 12 * time.Hour

	agentTokenIssuer   = "omniroute"
	agentTokenAudience = "omniroute-agent"
)

// Defaults of the Salesforce token cache.
const (
	defaultTokenCacheSize = 10000
	defaultTokenCacheTTL  = 5 * time.Minute
	defaultUserInfoCalls  = 32
	userInfoTimeout       = 10 * time.Second
)

// Refusal reasons (omniroute_gateway_refused_total{reason}).
const (
	refusedOrigin       = "origin"
	refusedNotWebsocket = "not_websocket"
	refusedNoToken      = "no_token"
	refusedBadToken     = "bad_token"
	refusedExpired      = "expired_token"
	refusedMismatch     = "agent_mismatch"
	refusedQuery        = "token_in_query"
	refusedIdentity     = "identity_unavailable"
	refusedShutdown     = "shutting_down"
	refusedNotReady     = "not_ready"
)

var refusedReasons = []string{refusedOrigin, refusedNotWebsocket, refusedNoToken, refusedBadToken, refusedExpired,
	refusedMismatch, refusedQuery, refusedIdentity, refusedShutdown, refusedNotReady}

// MintAgentToken returns a demo token for user (a Salesforce User Id) that expires ttl after
// now (at most MaxAgentTokenTTL), signed with key (at least MinAgentTokenKeyLength bytes).
func MintAgentToken(key Secret, user string, ttl time.Duration, now time.Time) (string, error) {
	switch {
	case len(key.Reveal()) < MinAgentTokenKeyLength:
		return "", fmt.Errorf("mint an agent token: the key is shorter than %d bytes", MinAgentTokenKeyLength)
	case user == "":
		return "", errors.New("mint an agent token: no user")
	case ttl <= 0 || ttl > MaxAgentTokenTTL:
		return "", fmt.Errorf("mint an agent token: lifetime %s is not between 0 and %s", ttl, MaxAgentTokenTTL)
	}
	claims := jwt.RegisteredClaims{
		Issuer: agentTokenIssuer, Audience: jwt.ClaimStrings{agentTokenAudience}, Subject: user,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key.Reveal()))
	if err != nil {
		return "", fmt.Errorf("mint an agent token: %w", err)
	}
	return s, nil
}

// AgentTokenProtocol is the Sec-WebSocket-Protocol value that carries token.
func AgentTokenProtocol(token string) string {
	return AgentTokenProtocolPrefix + base64.RawURLEncoding.EncodeToString([]byte(token))
}

// AgentAuthOptions configures how the gateway authenticates agents. With neither TokenKey nor
// UserInfoURL set every connection is refused.
type AgentAuthOptions struct {
	// TokenKey verifies demo tokens (OMNIROUTE_AGENT_TOKEN_KEY); empty: demo tokens are refused.
	TokenKey Secret
	// UserInfoURL is the org's OpenID Connect userinfo endpoint, e.g.
	// https://login.salesforce.com/services/oauth2/userinfo; empty: Salesforce tokens are
	// refused.
	UserInfoURL string
	// OrgID is the only organization whose users are let in (15 or 18 characters); required
	// with UserInfoURL (login.salesforce.com answers for every org).
	OrgID string
	// HTTPClient calls UserInfoURL. Default: http.DefaultClient with a 10 s deadline per call.
	HTTPClient *http.Client
	// CacheSize bounds the Salesforce tokens remembered (default 10,000), CacheTTL how long
	// one is trusted without asking again (default 5 minutes): a revoked token still opens a
	// connection for that long.
	CacheSize int
	CacheTTL  time.Duration
	// MaxUserInfoCalls bounds the userinfo calls in flight (default 32): anyone can present a
	// made-up token, and each one not in the cache is a call to Salesforce. A token waits for
	// a free call, within the call's 10 s (then 503 identity_unavailable).
	MaxUserInfoCalls int
	// Now is the clock (expiry of demo tokens and cache entries). Default time.Now.
	Now func() time.Time
}

// UserInfoPath is the OpenID Connect userinfo endpoint under the org's login URL
// (https://login.salesforce.com, https://test.salesforce.com for sandboxes, or the My Domain).
const UserInfoPath = "/services/oauth2/userinfo"

// AgentAuthFromConfig is how the daemon authenticates agents: demo tokens signed with
// OMNIROUTE_AGENT_TOKEN_KEY, and Salesforce tokens of orgID's users checked at the userinfo
// endpoint of OMNIROUTE_SALESFORCE_LOGIN_URL. With orgID empty (the org's id not known yet)
// Salesforce tokens are refused.
func AgentAuthFromConfig(c Config, orgID string, client *http.Client) AgentAuthOptions {
	o := AgentAuthOptions{TokenKey: c.AgentTokenKey, OrgID: orgID, HTTPClient: client}
	if orgID != "" {
		o.UserInfoURL = strings.TrimSuffix(c.Salesforce.LoginURL, "/") + UserInfoPath
	}
	return o
}

// authError is a refused upgrade: the status, the metric's reason, and a message for the
// client (never the token).
type authError struct {
	status  int
	reason  string
	message string
}

func refuse(status int, reason, message string) *authError {
	return &authError{status: status, reason: reason, message: message}
}

// agentAuth checks tokens. It is safe for concurrent use.
type agentAuth struct {
	o      AgentAuthOptions
	parser *jwt.Parser
	cache  *tokenCache
	calls  singleflight.Group
	// slots holds one token per userinfo call in flight (MaxUserInfoCalls).
	slots chan struct{}
}

func newAgentAuth(o AgentAuthOptions) (*agentAuth, error) {
	if k := o.TokenKey.Reveal(); k != "" && len(k) < MinAgentTokenKeyLength {
		return nil, fmt.Errorf("agent token key: shorter than %d bytes", MinAgentTokenKeyLength)
	}
	if o.UserInfoURL != "" && o.OrgID == "" {
		// login.salesforce.com answers for every org: without the org's id, any org's user
		// would get in.
		return nil, errors.New("agent auth: Salesforce tokens need the org's id (OrgID) to refuse other orgs' users")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.CacheSize <= 0 {
		o.CacheSize = defaultTokenCacheSize
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = defaultTokenCacheTTL
	}
	if o.MaxUserInfoCalls <= 0 {
		o.MaxUserInfoCalls = defaultUserInfoCalls
	}
	return &agentAuth{
		o: o,
		parser: jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(agentTokenIssuer),
			jwt.WithAudience(agentTokenAudience), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(o.Now)),
		cache: newTokenCache(o.CacheSize, o.CacheTTL),
		slots: make(chan struct{}, o.MaxUserInfoCalls),
	}, nil
}

// requestToken finds the request's token: the token subprotocol or the Authorization bearer
// (both: they must agree). A token in the query string is refused outright.
func requestToken(r *http.Request) (string, *authError) {
	q := r.URL.Query()
	for _, k := range []string{"token", "access_token", "oauth_token", "bearer"} {
		if q.Has(k) {
			return "", refuse(http.StatusBadRequest, refusedQuery,
				"a token in the query string ends up in logs: send it as the "+AgentTokenProtocolPrefix+"<base64url> subprotocol or an Authorization bearer")
		}
	}
	var fromProto string
	for _, p := range websocket.Subprotocols(r) {
		enc, ok := strings.CutPrefix(p, AgentTokenProtocolPrefix)
		if !ok {
			continue
		}
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil || len(b) == 0 || fromProto != "" {
			return "", refuse(http.StatusUnauthorized, refusedBadToken, "the token subprotocol is not one base64url token")
		}
		fromProto = string(b)
	}
	fromHeader, hasHeader := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case hasHeader && fromProto != "" && fromHeader != fromProto:
		return "", refuse(http.StatusUnauthorized, refusedBadToken, "the Authorization and subprotocol tokens differ")
	case hasHeader && fromHeader != "":
		return fromHeader, nil
	case fromProto != "":
		return fromProto, nil
	}
	return "", refuse(http.StatusUnauthorized, refusedNoToken, "a token is required")
}

// authenticate returns the Salesforce User Id token stands for, or why it is refused.
func (a *agentAuth) authenticate(ctx context.Context, token string) (string, *authError) {
	if isDemoToken(token) {
		return a.demoUser(token)
	}
	return a.salesforceUser(ctx, token)
}

// isDemoToken says whether token is a JWT that claims omniroute as its issuer (unverified:
// demoUser verifies it). Salesforce's own JWT-based access tokens have its issuer and go to
// userinfo; whatever claims to be omniroute's is checked against the demo key alone.
func isDemoToken(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	return json.Unmarshal(payload, &c) == nil && c.Issuer == agentTokenIssuer
}

func (a *agentAuth) demoUser(token string) (string, *authError) {
	key := a.o.TokenKey.Reveal()
	if key == "" {
		return "", refuse(http.StatusUnauthorized, refusedBadToken, "demo tokens are off: no agent token key is configured")
	}
	var claims jwt.RegisteredClaims
	_, err := a.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return []byte(key), nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", refuse(http.StatusUnauthorized, refusedExpired, "the token has expired")
	case err != nil:
		return "", refuse(http.StatusUnauthorized, refusedBadToken, "the token is not valid")
	case claims.Subject == "" || claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > MaxAgentTokenTTL:
		return "", refuse(http.StatusUnauthorized, refusedBadToken, "the token has no subject or lives too long")
	}
	return claims.Subject, nil
}

// userInfo is the part of the OpenID Connect userinfo answer the gateway reads.
type userInfo struct {
	UserID string `json:"user_id"`
	OrgID  string `json:"organization_id"`
	Active bool   `json:"active"`
}

func (a *agentAuth) salesforceUser(ctx context.Context, token string) (string, *authError) {
	if a.o.UserInfoURL == "" {
		return "", refuse(http.StatusUnauthorized, refusedBadToken, "Salesforce tokens are off: no identity endpoint is configured")
	}
	sum := sha256.Sum256([]byte(token))
	if user, ok := a.cache.get(sum, a.o.Now()); ok {
		return user, nil
	}
	// One call per token at a time; the key is the token's hash, never the token.
	v, _, _ := a.calls.Do(hex.EncodeToString(sum[:]), func() (any, error) {
		user, aerr := a.askUserInfo(ctx, token)
		if aerr == nil {
			a.cache.put(sum, user, a.o.Now())
		}
		return authResult{user, aerr}, nil
	})
	res := v.(authResult)
	return res.user, res.err
}

type authResult struct {
	user string
	err  *authError
}

// askUserInfo calls the userinfo endpoint with token. A refused token (401, 403, 404: the
// identity service's Bad_OAuth_Token, Inactive...) is bad_token; a service that cannot answer
// is identity_unavailable (503: the client retries).
func (a *agentAuth) askUserInfo(ctx context.Context, token string) (string, *authError) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), userInfoTimeout)
	defer cancel()
	unavailable := refuse(http.StatusServiceUnavailable, refusedIdentity, "the Salesforce identity service did not answer; try again")
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	case <-ctx.Done():
		return "", unavailable
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.o.UserInfoURL, nil)
	if err != nil {
		return "", unavailable
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := a.o.HTTPClient.Do(req)
	if err != nil {
		return "", unavailable
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		return "", refuse(http.StatusUnauthorized, refusedBadToken, "Salesforce refused the token")
	case resp.StatusCode != http.StatusOK || err != nil:
		return "", unavailable
	}
	var ui userInfo
	if err := json.Unmarshal(body, &ui); err != nil || ui.UserID == "" {
		return "", unavailable
	}
	switch {
	case !ui.Active:
		return "", refuse(http.StatusForbidden, refusedBadToken, "the user is inactive")
	case !sameID(ui.OrgID, a.o.OrgID):
		return "", refuse(http.StatusForbidden, refusedBadToken, "the token is of another org")
	}
	return ui.UserID, nil
}

// tokenCache remembers the users of Salesforce tokens checked recently: at most size
// entries, each for ttl, keyed by the token's SHA-256 (the token itself is never kept). When
// full, the oldest entry goes. It is safe for concurrent use.
type tokenCache struct {
	size int
	ttl  time.Duration
	mu   sync.Mutex
	m    map[[32]byte]cacheEntry
	// order holds the keys in insertion order (a ring of size entries).
	order [][32]byte
	next  int
}

type cacheEntry struct {
	user    string
	expires time.Time
}

func newTokenCache(size int, ttl time.Duration) *tokenCache {
	return &tokenCache{size: size, ttl: ttl, m: make(map[[32]byte]cacheEntry), order: make([][32]byte, 0, min(size, 1024))}
}

func (c *tokenCache) get(k [32]byte, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !now.Before(e.expires) {
		return "", false
	}
	return e.user, true
}

func (c *tokenCache) put(k [32]byte, user string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		c.m[k] = cacheEntry{user, now.Add(c.ttl)}
		return
	}
	if len(c.order) < c.size {
		c.order = append(c.order, k)
	} else {
		delete(c.m, c.order[c.next])
		c.order[c.next] = k
		c.next = (c.next + 1) % c.size
	}
	c.m[k] = cacheEntry{user, now.Add(c.ttl)}
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
