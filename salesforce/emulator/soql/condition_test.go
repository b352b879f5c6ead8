package soql_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

func payload(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	return m
}

// The three channel members the external-routing docs define (facts §1.3).
func TestChannelMemberFilters(t *testing.T) {
	t.Parallel()
	psr, err := soql.ParseCondition("RoutingModel = 'ExternalRouting' AND IsReadyForRouting = true")
	require.NoError(t, err)
	require.Equal(t, []string{"RoutingModel", "IsReadyForRouting"}, psr.Paths())
	usp, err := soql.ParseCondition("ChangeEventHeader.changeType = 'CREATE' OR (IsCurrentState = false)")
	require.NoError(t, err)
	require.Equal(t, []string{"ChangeEventHeader.changeType", "IsCurrentState"}, usp.Paths())
	aw, err := soql.ParseCondition("ChangeEventHeader.changeType = 'UPDATE' AND RoutingModel = 'ExternalRouting'")
	require.NoError(t, err)

	tests := []struct {
		name    string
		cond    *soql.Condition
		payload string
		want    bool
	}{
		{"psr create", psr, `{"ChangeEventHeader":{"changeType":"CREATE"},"RoutingModel":"ExternalRouting","IsReadyForRouting":true,"IsPushed":false}`, true},
		{"psr update without IsReadyForRouting", psr, `{"ChangeEventHeader":{"changeType":"UPDATE"},"IsPushed":true}`, false},
		{"psr not ready", psr, `{"ChangeEventHeader":{"changeType":"CREATE"},"RoutingModel":"ExternalRouting","IsReadyForRouting":false}`, false},
		{"psr native routing", psr, `{"ChangeEventHeader":{"changeType":"CREATE"},"RoutingModel":"LeastActive","IsReadyForRouting":true}`, false},
		{"psr model case-insensitive", psr, `{"RoutingModel":"externalrouting","IsReadyForRouting":true}`, true},
		{"usp create", usp, `{"ChangeEventHeader":{"changeType":"CREATE"},"IsCurrentState":true}`, true},
		{"usp update to not current", usp, `{"ChangeEventHeader":{"changeType":"UPDATE"},"IsCurrentState":false}`, true},
		{"usp update still current", usp, `{"ChangeEventHeader":{"changeType":"UPDATE"},"IsCurrentState":true}`, false},
		{"usp update without the field", usp, `{"ChangeEventHeader":{"changeType":"UPDATE"},"StatusEndDate":"2026-11-22T10:00:00Z"}`, false},
		{"usp delete", usp, `{"ChangeEventHeader":{"changeType":"DELETE"}}`, false},
		{"aw update external", aw, `{"ChangeEventHeader":{"changeType":"UPDATE"},"RoutingModel":"ExternalRouting","Status":"Opened"}`, true},
		{"aw create", aw, `{"ChangeEventHeader":{"changeType":"CREATE"},"RoutingModel":"ExternalRouting"}`, false},
		{"aw update without model", aw, `{"ChangeEventHeader":{"changeType":"UPDATE"},"Status":"Opened"}`, false},
		{"header not an object", usp, `{"ChangeEventHeader":"CREATE"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.cond.Eval(soql.LookupFold(payload(t, tc.payload))))
		})
	}
}

// Eval hands the getter each path exactly as written.
func TestConditionPathsAsWritten(t *testing.T) {
	t.Parallel()
	c, err := soql.ParseCondition("changeEventHeader.ChangeType = 'CREATE' and (a.B.c IN (1, 2) or a.B.c = null)")
	require.NoError(t, err)
	var seen []string
	got := c.Eval(func(p string) (any, bool) {
		seen = append(seen, p)
		if p == "changeEventHeader.ChangeType" {
			return "CREATE", true
		}
		return nil, false
	})
	require.True(t, got)
	require.Equal(t, []string{"changeEventHeader.ChangeType", "a.B.c", "a.B.c"}, seen)
	require.Equal(t, []string{"changeEventHeader.ChangeType", "a.B.c"}, c.Paths())
	require.Equal(t, "changeEventHeader.ChangeType = 'CREATE' and (a.B.c IN (1, 2) or a.B.c = null)", c.String())
}

func TestLookupFold(t *testing.T) {
	t.Parallel()
	get := soql.LookupFold(payload(t, `{"ChangeEventHeader":{"changeType":"CREATE","recordIds":["a"]},"Name":"x","name":"y"}`))
	v, ok := get("changeeventheader.CHANGETYPE")
	require.True(t, ok)
	require.Equal(t, "CREATE", v)
	v, ok = get("Name")
	require.True(t, ok)
	require.Equal(t, "x", v, "an exact match wins")
	v, ok = get("NAME")
	require.True(t, ok)
	require.Equal(t, "x", v, "of several folded matches the smallest key wins")
	_, ok = get("ChangeEventHeader.changeType.deeper")
	require.False(t, ok)
	_, ok = get("Missing")
	require.False(t, ok)
}

func TestConditionValues(t *testing.T) {
	t.Parallel()
	vals := map[string]any{
		"F":   2.5,
		"I":   int64(3),
		"N":   json.Number("7"),
		"S":   "Hello World",
		"B":   true,
		"Nil": nil,
		"DT":  "2026-11-22T10:00:00Z",
		"T":   time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
	}
	get := func(p string) (any, bool) { v, ok := vals[p]; return v, ok }
	tests := []struct {
		expr string
		want bool
	}{
		{"F = 2.5", true}, {"F != 2.5", false}, {"F IN (1, 2.5)", true},
		{"I = 3", true}, {"I != 3", false}, {"I IN (1, 3)", true}, {"I IN (1, 2)", false},
		{"N = 7", true}, {"N IN (6.5, 7)", true},
		{"S = 'hello world'", true}, {"S != 'Hello World'", false}, {"S IN ('x', 'HELLO WORLD')", true},
		{"B = true", true}, {"B != true", false}, {"B = false", false},
		{"Nil = null", true}, {"Nil != null", false}, {"Nil = 1", false}, {"Nil != 1", true},
		{"Nil IN ('a')", false}, {"Nil IN ('a', null)", true},
		{"Missing = null", true}, {"Missing != 'x'", true}, {"Missing = 'x'", false},
		{"DT = '2026-11-22T10:00:00Z'", true}, {"DT != null", true}, {"T = null", false},
		{"S = 1", false}, {"F = 'x'", false}, {"B = 1", false},
		{"(F = 2.5 OR S = 'x') AND B = true", true}, {"F = 1 OR S = 'x' OR B = true", true}, {"F = 2.5 AND S = 'x' AND B = true", false},
	}
	for _, tc := range tests {
		c, err := soql.ParseCondition(tc.expr)
		require.NoError(t, err, tc.expr)
		require.Equal(t, tc.want, c.Eval(get), tc.expr)
	}
}

func TestParseConditionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr, msg string
	}{
		{"", "empty filter expression at column 1"},
		{"A =", "unexpected token: <EOF> at column 4"},
		{"A = 1 AND B = 2 OR C = 3", "unexpected token: 'OR' at column 17"},
		{"A = 1 B = 2", "unexpected token: 'B' at column 7"},
		{"CreatedDate = TODAY", "date literals (TODAY): not in the emulator's SOQL subset (what omniroute sends) at column 15"},
		{"A IN (LAST_N_DAYS:2)", "date literals (LAST_N_DAYS): not in the emulator's SOQL subset (what omniroute sends) at column 7"},
		{"A LIKE 'x%'", "LIKE: not in the emulator's SOQL subset (what omniroute sends); use =, != or IN at column 3"},
		{"NOT A = 1", "NOT: not in the emulator's SOQL subset (what omniroute sends); use =, != or IN at column 1"},
		{"A > 1", "operator > in a filter expression: not in the emulator's SOQL subset (what omniroute sends); use =, != or IN at column 3"},
		{"A = 2026-11-22", "date and dateTime literals (2026-11-22): not in the emulator's SOQL subset (what omniroute sends) at column 5"},
		{"A = 'open", "unterminated string literal at column 5"},
		{"A.B. = 1", "unexpected token: '.' at column 4"},
		{"(A = 1", "unexpected token: <EOF> at column 7"},
		{"A = 1 AND\n  B = ", "unexpected token: <EOF> at row 2, column 7"},
		{"A IN (SELECT Id FROM X)", "semi-join sub-selects: not in the emulator's SOQL subset (what omniroute sends) at column 7"},
	}
	for _, tc := range tests {
		_, err := soql.ParseCondition(tc.expr)
		var e *soql.Error
		require.True(t, errors.As(err, &e), tc.expr)
		require.Equal(t, soql.CodeMalformedQuery, e.Code, tc.expr)
		require.Equal(t, tc.msg, e.Message, tc.expr)
	}
}
