package emulator

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// A deactivated user cannot mint a new token with any grant, as a real org refuses the login
// ("authentication failure"); the emulator used to hand one out.
func TestReviewDeactivatedUserGetsNoToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	uid := h.userID("agent07@omniroute.demo")
	s, b := h.rest(http.MethodPatch, "sobjects/User/"+uid, map[string]any{"IsActive": false})
	require.Equal(t, http.StatusNoContent, s, string(b))

	s, b = h.form("/services/oauth2/token", url.Values{
		"grant_type": {"password"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret},
		"username": {"agent07@omniroute.demo"}, "password": {DemoPassword},
	})
	require.Equal(t, http.StatusBadRequest, s, string(b))
	require.JSONEq(t, `{"error":"invalid_grant","error_description":"authentication failure"}`, string(b))

	claims := jwt.MapClaims{"iss": DemoClientID, "sub": "agent07@omniroute.demo", "aud": "https://login.salesforce.com", "exp": h.clock.Now().Add(3 * time.Minute).Unix()}
	s, b = h.form("/services/oauth2/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion":  {signAssertion(t, claims, "testdata/demo-jwt-private-key.pem")},
	})
	require.Equal(t, http.StatusBadRequest, s, string(b))
	require.JSONEq(t, `{"error":"invalid_grant","error_description":"authentication failure"}`, string(b))

	// Reactivated, the same user logs in again.
	s, b = h.rest(http.MethodPatch, "sobjects/User/"+uid, map[string]any{"IsActive": true})
	require.Equal(t, http.StatusNoContent, s, string(b))
	h.passwordToken("agent07@omniroute.demo", DemoPassword)
}
