package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func signAssertion(t *testing.T, claims jwt.MapClaims, keyFile string) string {
	t.Helper()
	pemBytes, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	key, err := jwt.ParseRSAPrivateKeyFromPEM(pemBytes)
	require.NoError(t, err)
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	require.NoError(t, err)
	return s
}

func TestTokenGrants(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	now := h.clock.Now()
	good := jwt.MapClaims{"iss": DemoClientID, "sub": "agent07@omniroute.demo", "aud": "https://login.salesforce.com", "exp": now.Add(3 * time.Minute).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	key := "testdata/demo-jwt-private-key.pem"
	jwtGrant := "urn:ietf:params:oauth:grant-type:jwt-bearer"
	tests := []struct {
		name   string
		form   url.Values
		status int
		errStr string
	}{
		{"password", url.Values{"grant_type": {"password"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}, "username": {DemoUsername}, "password": {DemoPassword}}, 200, ""},
		{"password wrong", url.Values{"grant_type": {"password"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}, "username": {DemoUsername}, "password": {"x"}}, 400, `"error":"invalid_grant"`},
		{"password bad secret", url.Values{"grant_type": {"password"}, "client_id": {DemoClientID}, "client_secret": {"x"}, "username": {DemoUsername}, "password": {DemoPassword}}, 400, `"error":"invalid_client"`},
		{"client credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}}, 200, ""},
		{"client credentials unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nope"}, "client_secret": {DemoClientSecret}}, 400, `"error":"invalid_client_id"`},
		{"jwt", url.Values{"grant_type": {jwtGrant}, "assertion": {signAssertion(t, good, key)}}, 200, ""},
		{"jwt own url audience", url.Values{"grant_type": {jwtGrant}, "assertion": {signAssertion(t, with("aud", h.srv.URL), key)}}, 200, ""},
		{"jwt bad audience", url.Values{"grant_type": {jwtGrant}, "assertion": {signAssertion(t, with("aud", "https://x.example"), key)}}, 400, "audience is invalid"},
		{"jwt bad issuer", url.Values{"grant_type": {jwtGrant}, "assertion": {signAssertion(t, with("iss", "other"), key)}}, 400, "invalid_client_id"},
		{"jwt unknown subject", url.Values{"grant_type": {jwtGrant}, "assertion": {signAssertion(t, with("sub", "who@x"), key)}}, 400, "user hasn't approved this consumer"},
		{"jwt expired", url.Values{"grant_type": {jwtGrant}, "assertion": {signAssertion(t, with("exp", now.Add(-10*time.Minute).Unix()), key)}}, 400, "expired authorization code"},
		{"jwt without exp", url.Values{"grant_type": {jwtGrant}, "assertion": {signAssertion(t, with("exp", nil), key)}}, 400, "invalid_grant"},
		{"jwt tampered", url.Values{"grant_type": {jwtGrant}, "assertion": {signAssertion(t, good, key) + "x"}}, 400, "invalid_grant"},
		{"unsupported grant", url.Values{"grant_type": {"authorization_code"}}, 400, "unsupported_grant_type"},
	}
	for _, tc := range tests {
		status, body := h.form("/services/oauth2/token", tc.form)
		require.Equal(t, tc.status, status, tc.name+": "+string(body))
		if tc.status != 200 {
			require.Contains(t, string(body), tc.errStr, tc.name)
			require.Contains(t, string(body), `"error_description"`, tc.name)
			continue
		}
		var tok map[string]string
		require.NoError(t, json.Unmarshal(body, &tok), tc.name)
		// Exactly the members of each flow's documented response (salesforce-facts.md 6.1).
		want := map[string][]string{
			"password":           {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"},
			"client_credentials": {"access_token", "signature", "scope", "instance_url", "id", "token_type", "issued_at"},
			jwtGrant:             {"access_token", "scope", "instance_url", "id", "token_type"},
		}[tc.form.Get("grant_type")]
		require.NotNil(t, want, tc.name)
		require.ElementsMatch(t, want, sortedKeys(tok), tc.name)
		for _, f := range want {
			require.NotEmpty(t, tok[f], tc.name+" "+f)
		}
		require.Equal(t, h.srv.URL, tok["instance_url"])
		require.Equal(t, "Bearer", tok["token_type"])
		require.True(t, strings.HasPrefix(tok["id"], h.srv.URL+"/id/00D"), tok["id"])
		s, _, _ := h.do(http.MethodGet, "/services/data/v62.0/limits", tok["access_token"], nil)
		require.Equal(t, http.StatusOK, s, tc.name)
	}
	// The JWT token acts as its subject.
	_, body := h.form("/services/oauth2/token", url.Values{"grant_type": {jwtGrant}, "assertion": {signAssertion(t, good, key)}})
	var tok map[string]string
	require.NoError(t, json.Unmarshal(body, &tok))
	require.True(t, strings.HasSuffix(tok["id"], "/"+h.userID("agent07@omniroute.demo")))
}

// TestSessionExpiresAfterIssueWhateverTheUse: by default a token dies SessionTimeout after it
// was issued, though REST and CometD used it all along; the held connect learns it with
// 401::Authentication invalid.
func TestSessionExpiresAfterIssueWhateverTheUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.SessionTimeout = time.Hour; o.ClientTimeout = 2 * time.Hour })
	c := h.comet(h.token)
	c.handshake()
	require.Equal(t, true, c.subscribe("/data/ChangeEvents", -1)["successful"])
	for range 5 {
		h.clock.Advance(11 * time.Minute)
		out := c.send(map[string]any{"channel": "/meta/connect", "connectionType": "long-polling"})
		require.Equal(t, true, out[0]["successful"], out)
	}
	s, _ := h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusOK, s)
	h.clock.Advance(6 * time.Minute) // 61 minutes after issue, 6 after the last use
	out := c.send(map[string]any{"channel": "/meta/connect", "connectionType": "long-polling"})
	require.Equal(t, false, out[0]["successful"], out)
	require.Equal(t, "401::Authentication invalid", out[0]["error"])
	s, b := h.rest(http.MethodGet, "limits", nil)
	requireRESTError(t, s, b, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
	// A freshly minted token works.
	c2 := h.comet(h.passwordToken(DemoUsername, DemoPassword))
	c2.handshake()
}

func TestSessionTimeoutAndExpiry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options) { o.SessionTimeout = time.Hour; o.ExtendSessionOnActivity = true })
	s, _ := h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusOK, s)
	// With ExtendSessionOnActivity, use keeps the session alive (inactivity timeout).
	h.clock.Advance(50 * time.Minute)
	s, _ = h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusOK, s)
	h.clock.Advance(61 * time.Minute)
	s, b := h.rest(http.MethodGet, "limits", nil)
	require.Equal(t, http.StatusUnauthorized, s)
	require.JSONEq(t, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, string(b))
	// CometD answers an expired token with 401::Authentication invalid.
	c := h.comet(h.token)
	out := c.send(map[string]any{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": []string{"long-polling"}})
	require.Equal(t, false, out[0]["successful"])
	require.Contains(t, out[0]["error"].(string)+stringOf(out[0]["ext"]), "401::Authentication invalid")

	// Control API: every issued token becomes invalid.
	tok := h.passwordToken(DemoUsername, DemoPassword)
	st, _, _ := h.do(http.MethodGet, "/services/data/v62.0/limits", tok, nil)
	require.Equal(t, http.StatusOK, st)
	s, _ = h.control(http.MethodPost, "sessions/expire", nil)
	require.Equal(t, http.StatusOK, s)
	st, _, _ = h.do(http.MethodGet, "/services/data/v62.0/limits", tok, nil)
	require.Equal(t, http.StatusUnauthorized, st)
}

func stringOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.form("/services/oauth2/token", url.Values{"grant_type": {"password"}, "client_id": {DemoClientID}, "client_secret": {"bad-secret-value"}, "username": {DemoUsername}, "password": {"bad-password-value"}})
	h.rest(http.MethodGet, "limits", nil)
	c := h.comet(h.token)
	c.handshake()
	c.subscribe("/data/ChangeEvents", -1)
	h.createWork("Case", "Support_EN")
	c.events(2)
	bad := h.comet("not-a-valid-token-value")
	bad.send(map[string]any{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": []string{"long-polling"}})
	s, b := h.control(http.MethodGet, "requests", nil)
	require.Equal(t, http.StatusOK, s)
	require.Contains(t, string(b), `"grantType":"password"`)
	require.NotEmpty(t, h.logs.String(), "debug logging is on, so the check below has something to look at")
	for _, secret := range []string{h.token, DemoClientSecret, DemoPassword, "bad-secret-value", "bad-password-value", testControlToken, "not-a-valid-token-value"} {
		require.NotContains(t, h.logs.String(), secret)
		require.NotContains(t, string(b), secret)
	}
}
