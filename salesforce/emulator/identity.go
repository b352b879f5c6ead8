package emulator

import (
	"net/http"
	"strings"
)

// identityError answers an identity-service failure as Salesforce words it: a status and a
// one-word plain-text body ("Using Identity URLs": Missing_OAuth_Token, Bad_OAuth_Token,
// Wrong_Org, Bad_Id, Inactive, No_Access).
func identityError(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}

// identityUser authenticates the request's token (Authorization header or oauth_token /
// access_token parameter) and returns the token's user record, or answers the failure.
func (e *Emulator) identityUser(w http.ResponseWriter, r *http.Request) (*record, bool) {
	token := bearerToken(r.Header.Get("Authorization"))
	if token == "" {
		token = r.URL.Query().Get("oauth_token")
	}
	if token == "" {
		token = r.URL.Query().Get("access_token")
	}
	if token == "" {
		identityError(w, http.StatusForbidden, "Missing_OAuth_Token")
		return nil, false
	}
	uid, ok := e.authenticate(token)
	if !ok {
		identityError(w, http.StatusForbidden, "Bad_OAuth_Token")
		return nil, false
	}
	e.mu.Lock()
	u, ok := e.st.get(uid)
	var snap *record
	if ok {
		snap = u.snapshot()
	}
	e.mu.Unlock()
	if !ok {
		identityError(w, http.StatusNotFound, "Bad_Id")
		return nil, false
	}
	return snap, true
}

// identityURL is a user's identity URL under the request's instance URL.
func (e *Emulator) identityURL(r *http.Request, userID string) string {
	return e.instanceURL(r) + "/id/" + e.opts.Seed.OrgID + "/" + userID
}

// handleIdentity is GET /id/{orgId}/{userId}, the identity URL returned as "id" by the token
// endpoint. A token may read only its own user's identity: reading another user's needs the
// View All Data permission, which the emulator does not model (No_Access).
func (e *Emulator) handleIdentity(w http.ResponseWriter, r *http.Request) {
	u, ok := e.identityUser(w, r)
	if !ok {
		return
	}
	org, user := r.PathValue("org"), normalizeID(r.PathValue("user"))
	switch {
	case normalizeID(org) != normalizeID(e.opts.Seed.OrgID) && org != e.opts.Seed.OrgID[:15]:
		identityError(w, http.StatusForbidden, "Wrong_Org")
		return
	case !validIDShape(user) || !strings.HasPrefix(user, "005"):
		identityError(w, http.StatusNotFound, "Bad_Id")
		return
	case user != u.id:
		identityError(w, http.StatusNotFound, "No_Access")
		return
	case !u.boolean("IsActive"):
		identityError(w, http.StatusNotFound, "Inactive")
		return
	}
	inst := e.instanceURL(r)
	writeJSON(w, http.StatusOK, object{
		{"id", e.identityURL(r, u.id)},
		{"asserted_user", true},
		{"user_id", u.id},
		{"organization_id", e.opts.Seed.OrgID},
		{"username", u.str("Username")},
		{"nick_name", u.str("Alias")},
		{"display_name", u.str("Name")},
		{"email", u.str("Email")},
		{"email_verified", true},
		{"first_name", nilIfEmpty(u.str("FirstName"))},
		{"last_name", u.str("LastName")},
		{"active", u.boolean("IsActive")},
		{"user_type", userType(u)},
		{"urls", object{
			{"rest", inst + "/services/data/v{version}/"},
			{"sobjects", inst + "/services/data/v{version}/sobjects/"},
			{"query", inst + "/services/data/v{version}/query/"},
		}},
		{"last_modified_date", u.time("LastModifiedDate")},
	})
}

// handleUserInfo is GET (or POST) /services/oauth2/userinfo, the OpenID Connect user info of
// the token's user. An inactive user's token answers with "active": false.
func (e *Emulator) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		identityError(w, http.StatusMethodNotAllowed, "Bad_Request")
		return
	}
	u, ok := e.identityUser(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, object{
		{"sub", e.identityURL(r, u.id)},
		{"user_id", u.id},
		{"organization_id", e.opts.Seed.OrgID},
		{"preferred_username", u.str("Username")},
		{"nickname", u.str("Alias")},
		{"name", u.str("Name")},
		{"email", u.str("Email")},
		{"email_verified", true},
		{"given_name", nilIfEmpty(u.str("FirstName"))},
		{"family_name", u.str("LastName")},
		{"active", u.boolean("IsActive")},
		{"user_type", userType(u)},
		{"updated_at", u.time("LastModifiedDate")},
	})
}

// userType is the identity service's user_type: STANDARD for standard users.
func userType(u *record) string {
	if t := u.str("UserType"); t != "" && t != "Standard" {
		return strings.ToUpper(t)
	}
	return "STANDARD"
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
