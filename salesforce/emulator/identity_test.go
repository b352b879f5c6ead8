package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIdentityURLAndUserInfo: the "id" of a token response and /services/oauth2/userinfo
// answer for a valid token with the user's id, username, org id and active state; bad,
// missing, expired and foreign tokens are refused in the identity service's words.
func TestIdentityURLAndUserInfo(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	status, body := h.form("/services/oauth2/token", url.Values{
		"grant_type": {"password"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret},
		"username": {agent1}, "password": {DemoPassword},
	})
	require.Equal(t, http.StatusOK, status, string(body))
	var tok struct {
		AccessToken string `json:"access_token"`
		ID          string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(body, &tok))
	idPath := strings.TrimPrefix(tok.ID, h.srv.URL)
	uid := h.userID(agent1)
	require.Equal(t, "/id/"+DemoSeed().OrgID+"/"+uid, idPath)

	s, b, _ := h.do(http.MethodGet, idPath, tok.AccessToken, nil)
	require.Equal(t, http.StatusOK, s, string(b))
	var id map[string]any
	require.NoError(t, json.Unmarshal(b, &id))
	require.Equal(t, tok.ID, id["id"])
	require.Equal(t, uid, id["user_id"])
	require.Equal(t, agent1, id["username"])
	require.Equal(t, DemoSeed().OrgID, id["organization_id"])
	require.Equal(t, true, id["active"])

	s, b, _ = h.do(http.MethodGet, "/services/oauth2/userinfo", tok.AccessToken, nil)
	require.Equal(t, http.StatusOK, s, string(b))
	var ui map[string]any
	require.NoError(t, json.Unmarshal(b, &ui))
	require.Equal(t, tok.ID, ui["sub"])
	require.Equal(t, uid, ui["user_id"])
	require.Equal(t, agent1, ui["preferred_username"])
	require.Equal(t, DemoSeed().OrgID, ui["organization_id"])
	require.Equal(t, true, ui["active"])

	// Failures.
	for _, tc := range []struct {
		path, token string
		status      int
		text        string
	}{
		{idPath, "", http.StatusForbidden, "Missing_OAuth_Token"},
		{idPath, "not-a-token", http.StatusForbidden, "Bad_OAuth_Token"},
		{"/services/oauth2/userinfo", "not-a-token", http.StatusForbidden, "Bad_OAuth_Token"},
		{"/id/00D5g000004OtherAAA/" + uid, tok.AccessToken, http.StatusForbidden, "Wrong_Org"},
		{"/id/" + DemoSeed().OrgID + "/nope", tok.AccessToken, http.StatusNotFound, "Bad_Id"},
		{"/id/" + DemoSeed().OrgID + "/" + h.userID(agent2), tok.AccessToken, http.StatusNotFound, "No_Access"},
	} {
		s, b, _ := h.do(http.MethodGet, tc.path, tc.token, nil)
		require.Equal(t, tc.status, s, tc)
		require.Equal(t, tc.text, string(b), tc)
	}
	// The 15-character user id works too, and the token may be a query parameter.
	s, _, _ = h.do(http.MethodGet, "/id/"+DemoSeed().OrgID+"/"+uid[:15]+"?oauth_token="+url.QueryEscape(tok.AccessToken), "", nil)
	require.Equal(t, http.StatusOK, s)

	// A deactivated user: the identity URL says Inactive, userinfo active=false.
	s, b = h.rest(http.MethodPatch, "sobjects/User/"+uid, map[string]any{"IsActive": false})
	require.Equal(t, http.StatusNoContent, s, string(b))
	s, b, _ = h.do(http.MethodGet, idPath, tok.AccessToken, nil)
	require.Equal(t, http.StatusNotFound, s)
	require.Equal(t, "Inactive", string(b))
	s, b, _ = h.do(http.MethodGet, "/services/oauth2/userinfo", tok.AccessToken, nil)
	require.Equal(t, http.StatusOK, s)
	require.NoError(t, json.Unmarshal(b, &ui))
	require.Equal(t, false, ui["active"])

	// An ended session is a bad token.
	h.em.ExpireSessions()
	s, b, _ = h.do(http.MethodGet, "/services/oauth2/userinfo", tok.AccessToken, nil)
	require.Equal(t, http.StatusForbidden, s)
	require.Equal(t, "Bad_OAuth_Token", string(b))
}
