package soql_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

// The inventory runs on the emulator's own schema over REST, on query and queryAll: every
// object and field omniroute reads exists.
func TestFrozenSubsetInventoryOverREST(t *testing.T) {
	t.Parallel()
	em, err := emulator.New(emulator.Options{Seed: emulator.DemoSeed()})
	require.NoError(t, err)
	srv := httptest.NewServer(em)
	t.Cleanup(func() {
		em.Close()
		srv.Close()
	})
	tok, err := em.IssueToken(emulator.DemoUsername)
	require.NoError(t, err)
	get := func(resource, stmt string) (int, []byte) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/services/data/v62.0/"+resource+"?q="+url.QueryEscape(stmt), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, body
	}
	for _, resource := range []string{"query", "queryAll"} {
		for _, stmt := range frozenInventory {
			status, body := get(resource, stmt)
			require.Equal(t, http.StatusOK, status, "%s %s: %s", resource, stmt, body)
			var out struct{ Done bool }
			require.NoError(t, json.Unmarshal(body, &out))
			require.True(t, out.Done, "%s %s: %s", resource, stmt, body)
		}
		// Outside the subset: Salesforce's error array, MALFORMED_QUERY, a reason naming the feature.
		status, body := get(resource, "SELECT Id FROM Case WHERE Subject LIKE 'x%'")
		require.Equal(t, http.StatusBadRequest, status, string(body))
		var errs []struct{ Message, ErrorCode string }
		require.NoError(t, json.Unmarshal(body, &errs), string(body))
		require.Len(t, errs, 1)
		require.Equal(t, "MALFORMED_QUERY", errs[0].ErrorCode)
		require.Equal(t, "\nSELECT Id FROM Case WHERE Subject LIKE 'x%'\n                                  ^\nERROR at Row:1:Column:35\n"+
			"LIKE: not in the emulator's SOQL subset (what omniroute sends); use =, != or IN", errs[0].Message)
	}
}
