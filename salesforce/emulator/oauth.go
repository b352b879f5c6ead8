package emulator

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// authState holds the connected app, passwords and issued sessions.
type authState struct {
	mu        sync.Mutex
	app       ConnectedApp
	pubKey    *rsa.PublicKey
	passwords map[string]string // lower-case username -> password
	userIDs   map[string]string // lower-case username -> user id
	runAsID   string
	sessions  map[string]*session
}

type session struct {
	userID   string
	issued   time.Time
	lastUsed time.Time
}

func parsePublicKey(pemText string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		k, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("certificate key is not RSA")
		}
		return k, nil
	default:
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			if rk, err2 := x509.ParsePKCS1PublicKey(block.Bytes); err2 == nil {
				return rk, nil
			}
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("public key is not RSA")
		}
		return rk, nil
	}
}

// tokenError is an OAuth error response.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (e *Emulator) instanceURL(r *http.Request) string {
	if e.opts.InstanceURL != "" {
		return strings.TrimSuffix(e.opts.InstanceURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// handleToken is POST /services/oauth2/token (salesforce-facts.md 6.1).
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, tokenError{"invalid_request", "must use HTTP POST"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, tokenError{"invalid_request", "invalid request body"})
		return
	}
	grant := r.PostForm.Get("grant_type")
	var userID string
	var terr *tokenError
	switch grant {
	case "password":
		userID, terr = e.passwordGrant(r)
	case "client_credentials":
		userID, terr = e.clientCredentialsGrant(r)
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		userID, terr = e.jwtGrant(r)
	case "":
		terr = &tokenError{"invalid_request", "grant type not supported"}
	default:
		terr = &tokenError{"unsupported_grant_type", "grant type not supported"}
	}
	if terr != nil {
		e.log.Info("token request refused", "grant_type", grant, "error", terr.Error)
		writeJSON(w, http.StatusBadRequest, terr)
		return
	}
	token := e.issueToken(userID)
	inst := e.instanceURL(r)
	issued := strconv.FormatInt(e.now().UnixMilli(), 10)
	id := inst + "/id/" + e.opts.Seed.OrgID + "/" + userID
	mac := hmac.New(sha256.New, []byte(e.auth.app.ClientSecret))
	mac.Write([]byte(id + issued))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	// Each flow answers the members its Salesforce help page shows, no more: the password
	// flow has no scope, the JWT bearer flow no issued_at or signature.
	var out object
	switch grant {
	case "password":
		out = object{{"access_token", token}, {"instance_url", inst}, {"id", id}, {"token_type", "Bearer"}, {"issued_at", issued}, {"signature", sig}}
	case "client_credentials":
		out = object{{"access_token", token}, {"signature", sig}, {"scope", "api"}, {"instance_url", inst}, {"id", id}, {"token_type", "Bearer"}, {"issued_at", issued}}
	default: // JWT bearer
		out = object{{"access_token", token}, {"scope", "api"}, {"instance_url", inst}, {"id", id}, {"token_type", "Bearer"}}
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) checkClient(r *http.Request, needSecret bool) *tokenError {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if bu, bp, ok := r.BasicAuth(); ok && id == "" {
		id, secret = bu, bp
	}
	if id == "" || id != e.auth.app.ClientID {
		return &tokenError{"invalid_client_id", "client identifier invalid"}
	}
	if needSecret && subtle.ConstantTimeCompare([]byte(secret), []byte(e.auth.app.ClientSecret)) != 1 {
		return &tokenError{"invalid_client", "invalid client credentials"}
	}
	return nil
}

func (e *Emulator) passwordGrant(r *http.Request) (string, *tokenError) {
	if terr := e.checkClient(r, true); terr != nil {
		return "", terr
	}
	user := lower(r.PostForm.Get("username"))
	e.auth.mu.Lock()
	pw, ok := e.auth.passwords[user]
	uid := e.auth.userIDs[user]
	e.auth.mu.Unlock()
	if !ok || pw == "" || subtle.ConstantTimeCompare([]byte(pw), []byte(r.PostForm.Get("password"))) != 1 {
		return "", &tokenError{"invalid_grant", "authentication failure"}
	}
	return uid, nil
}

func (e *Emulator) clientCredentialsGrant(r *http.Request) (string, *tokenError) {
	if terr := e.checkClient(r, true); terr != nil {
		return "", terr
	}
	if e.auth.runAsID == "" {
		return "", &tokenError{"invalid_grant", "no client credentials user enabled"}
	}
	return e.auth.runAsID, nil
}

func (e *Emulator) jwtGrant(r *http.Request) (string, *tokenError) {
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		return "", &tokenError{"invalid_request", "assertion is required"}
	}
	if e.auth.pubKey == nil {
		return "", &tokenError{"invalid_client", "the connected app has no certificate"}
	}
	now := e.now()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(assertion, claims, func(*jwt.Token) (any, error) { return e.auth.pubKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(3*time.Minute), jwt.WithExpirationRequired())
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return "", &tokenError{"invalid_grant", "expired authorization code"}
		case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			return "", &tokenError{"invalid_grant", "expiration is required"}
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			return "", &tokenError{"invalid_grant", "invalid assertion"}
		}
		return "", &tokenError{"invalid_grant", "invalid assertion"}
	}
	iss, _ := claims["iss"].(string)
	if iss != e.auth.app.ClientID {
		return "", &tokenError{"invalid_client_id", "client identifier invalid"}
	}
	if !e.audienceOK(claims, r) {
		return "", &tokenError{"invalid_grant", "audience is invalid"}
	}
	sub, _ := claims["sub"].(string)
	e.auth.mu.Lock()
	uid, ok := e.auth.userIDs[lower(sub)]
	e.auth.mu.Unlock()
	if !ok {
		return "", &tokenError{"invalid_grant", "user hasn't approved this consumer"}
	}
	return uid, nil
}

// audienceOK accepts login.salesforce.com, test.salesforce.com and the emulator's own URL.
func (e *Emulator) audienceOK(claims jwt.MapClaims, r *http.Request) bool {
	auds, err := claims.GetAudience()
	if err != nil {
		return false
	}
	ok := map[string]bool{
		"https://login.salesforce.com": true,
		"https://test.salesforce.com":  true,
		e.instanceURL(r):               true,
	}
	for _, a := range auds {
		if ok[strings.TrimSuffix(a, "/")] {
			return true
		}
	}
	return false
}

// issueToken creates a session token for a user id.
func (e *Emulator) issueToken(userID string) string {
	token := e.opts.Seed.OrgID[:15] + "!AQ" + randomHex(32)
	e.auth.mu.Lock()
	now := e.now()
	e.auth.sessions[token] = &session{userID: userID, issued: now, lastUsed: now}
	e.auth.mu.Unlock()
	e.tokensIssued.Add(1)
	return token
}

// IssueToken returns a valid access token for username without an OAuth round trip (tests).
func (e *Emulator) IssueToken(username string) (string, error) {
	e.auth.mu.Lock()
	uid, ok := e.auth.userIDs[lower(username)]
	e.auth.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("issue token for %q: %w", username, ErrNotFound)
	}
	return e.issueToken(uid), nil
}

// authenticate checks a token, REST or CometD alike, and returns the user id. A session ends
// SessionTimeout after it was issued, however much it is used, unless
// Options.ExtendSessionOnActivity makes every use restart the timeout (docs/emulator.md,
// "Sessions").
func (e *Emulator) authenticate(token string) (string, bool) {
	now := e.now()
	e.auth.mu.Lock()
	defer e.auth.mu.Unlock()
	s, ok := e.auth.sessions[token]
	if !ok {
		return "", false
	}
	from := s.issued
	if e.opts.ExtendSessionOnActivity {
		from = s.lastUsed
	}
	if now.Sub(from) > e.opts.SessionTimeout {
		delete(e.auth.sessions, token)
		return "", false
	}
	s.lastUsed = now
	return s.userID, true
}

func (e *Emulator) authenticateStreaming(token string) (string, bool) {
	return e.authenticate(bearerToken(token))
}

// bearerToken extracts the token from "Bearer x", "OAuth x" or a bare token.
func bearerToken(h string) string {
	h = strings.TrimSpace(h)
	for _, p := range []string{"Bearer ", "OAuth "} {
		if len(h) > len(p) && strings.EqualFold(h[:len(p)], p) {
			return strings.TrimSpace(h[len(p):])
		}
	}
	return h
}

// ExpireSessions invalidates every issued access token.
func (e *Emulator) ExpireSessions() {
	e.auth.mu.Lock()
	clear(e.auth.sessions)
	e.auth.mu.Unlock()
	e.stream.RevalidateSessions()
}
