package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// updateGolden rewrites mapping/testdata/invalid/*.err from `mapping check` output:
// go test ./cmd/omniroute -run TestMappingCheckInvalid -update
var updateGolden = flag.Bool("update", false, "rewrite mapping/testdata/invalid/*.err")

var summaryLine = regexp.MustCompile(`(?m)^\S+: \d+ problem\(s\) \(checked [a-z ]+\)\n`)

// These tests change the environment, so none is parallel.

func runMapping(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = mappingCommand(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// noOrg makes sure no OMNIROUTE_* variable from the environment reaches a test.
func noOrg(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OMNIROUTE_") {
			t.Setenv(k, "")
			require.NoError(t, os.Unsetenv(k))
		}
	}
}

// serveOrg serves an emulator org over loopback and points the OMNIROUTE_SALESFORCE_*
// variables at it, with the password flow.
func serveOrg(t *testing.T, seed emulator.Seed) {
	t.Helper()
	em, err := emulator.New(emulator.Options{Seed: seed})
	require.NoError(t, err)
	t.Cleanup(em.Close)
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	noOrg(t)
	t.Setenv(envLoginURL, srv.URL)
	t.Setenv(envClientID, emulator.DemoClientID)
	t.Setenv(envClientSecret, emulator.DemoClientSecret)
	t.Setenv(envUsername, emulator.DemoUsername)
	t.Setenv(envPassword, emulator.DemoPassword)
}

const (
	envLoginURL     = "OMNIROUTE_SALESFORCE_LOGIN_URL"
	envClientID     = "OMNIROUTE_SALESFORCE_CLIENT_ID"
	envClientSecret = "OMNIROUTE_SALESFORCE_CLIENT_SECRET"
	envUsername     = "OMNIROUTE_SALESFORCE_USERNAME"
	envPassword     = "OMNIROUTE_SALESFORCE_PASSWORD"
	envAPIVersion   = "OMNIROUTE_SALESFORCE_API_VERSION"
)

func TestMappingUsage(t *testing.T) {
	noOrg(t)
	for _, args := range [][]string{nil, {"nope"}, {"check"}, {"check", "a", "b"}, {"fetch", "extra"}, {"check", "-bogus", "x"}} {
		code, _, stderr := runMapping(t, args...)
		require.Equal(t, exitConfig, code, "%q", args)
		require.NotEmpty(t, stderr)
	}
	code, stdout, _ := runMapping(t, "help")
	require.Equal(t, exitOK, code)
	require.Contains(t, stdout, envClientSecret)
	code, _, stderr := runMapping(t, "fetch")
	require.Equal(t, exitConfig, code, "fetch needs credentials")
	require.Contains(t, stderr, envClientID)
}

// TestMappingCheckExamples: both documented examples pass the offline check.
func TestMappingCheckExamples(t *testing.T) {
	noOrg(t)
	for _, f := range []string{"../../docs/examples/mapping.yaml", "../../docs/examples/demo-mapping.yaml"} {
		code, stdout, stderr := runMapping(t, "check", f)
		require.Equal(t, exitOK, code, stderr)
		require.Equal(t, f+": ok (checked offline)\n", stdout)
		require.Empty(t, stderr)
	}
}

// TestMappingCheckInvalid: the check prints the same problems as the golden files and exits 1.
func TestMappingCheckInvalid(t *testing.T) {
	noOrg(t)
	files, err := filepath.Glob("../../mapping/testdata/invalid/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
		require.NoError(t, err)
		code, stdout, stderr := runMapping(t, "check", f)
		require.Equal(t, exitError, code, f)
		require.Empty(t, stdout)
		// The golden files name the file by its base name; the command by the path given. The
		// command adds a summary line after warnings.
		got := strings.ReplaceAll(stderr, f, filepath.Base(f))
		got = summaryLine.ReplaceAllString(got, "")
		if *updateGolden {
			require.NoError(t, os.WriteFile(strings.TrimSuffix(f, ".yaml")+".err", []byte(got), 0o644))
			continue
		}
		require.Equal(t, string(want), got, f)
	}
	code, _, stderr := runMapping(t, "check", filepath.Join(t.TempDir(), "missing.yaml"))
	require.Equal(t, exitError, code)
	require.Contains(t, stderr, "no such file")
}

// TestMappingCheckAgainstOrg: the check reads the org over HTTP and names the file position of
// what the org lacks, with a suggestion.
func TestMappingCheckAgainstOrg(t *testing.T) {
	seed := emulator.DemoSeed()
	serveOrg(t, seed)
	code, stdout, stderr := runMapping(t, "check", "../../docs/examples/demo-mapping.yaml")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, "../../docs/examples/demo-mapping.yaml: ok (checked against the org)\n", stdout)

	// Rename a status in the org: the check names the file position and suggests the new name.
	for i := range seed.PresenceStatuses {
		if seed.PresenceStatuses[i].DeveloperName == "Taking_notes" {
			seed.PresenceStatuses[i].DeveloperName = "Taking_note"
		}
	}
	serveOrg(t, seed)
	code, _, stderr = runMapping(t, "check", "../../docs/examples/demo-mapping.yaml")
	require.Equal(t, exitError, code)
	demo, err := os.ReadFile("../../docs/examples/demo-mapping.yaml")
	require.NoError(t, err)
	line := slices.Index(strings.Split(string(demo), "\n"), "    Taking_notes: Away/Notes") + 1
	require.Positive(t, line)
	require.Contains(t, stderr, fmt.Sprintf(`demo-mapping.yaml:%d:5: presence.fromSalesforce.Taking_notes: presence status "Taking_notes" does not exist in the org (did you mean Taking_note?)`, line))
	require.Contains(t, stderr, "problem(s) (checked against the org)")

	// -offline skips the org.
	code, _, _ = runMapping(t, "check", "-offline", "../../docs/examples/demo-mapping.yaml")
	require.Equal(t, exitOK, code)

	// An unreachable org is a runtime error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	t.Setenv(envLoginURL, closed)
	code, _, stderr = runMapping(t, "check", "../../docs/examples/demo-mapping.yaml")
	require.Equal(t, exitError, code)
	require.Contains(t, stderr, "connection refused")

	// A bad variable is a configuration error naming it, found before any request.
	t.Setenv(envAPIVersion, "sixty-four")
	code, _, stderr = runMapping(t, "check", "../../docs/examples/demo-mapping.yaml")
	require.Equal(t, exitConfig, code)
	require.Contains(t, stderr, `OMNIROUTE_SALESFORCE_API_VERSION: "sixty-four" is not an API version`)
}

// fillTODOs does what the admin does with a skeleton: choose a value for every TODO.
func fillTODOs(t *testing.T, skel string) string {
	t.Helper()
	section := ""
	var out []string
	for _, line := range strings.Split(skel, "\n") {
		if m := regexp.MustCompile(`^  (fromSalesforce|toSalesforce):`).FindStringSubmatch(line); m != nil {
			section = m[1]
		}
		if strings.Contains(line, "TODO") && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			switch {
			case strings.Contains(line, "total: TODO"):
				line = strings.Replace(line, "TODO", "10", 1)
			case section == "fromSalesforce":
				line = strings.Replace(line, "TODO", "Away/Break", 1)
			case section == "toSalesforce" && strings.Contains(line, "WrapUp:"):
				line = strings.Replace(line, "TODO", "Taking_notes", 1)
			case section == "toSalesforce" && (strings.Contains(line, "Away:") || strings.Contains(line, "ReadyOutbound:")):
				line = strings.Replace(line, "TODO", "Away_from_desk", 1)
			case section == "toSalesforce":
				line = strings.Replace(line, "TODO", "Available", 1)
			default:
				t.Fatalf("unexpected TODO: %s", line)
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// TestMappingFetchAndCheckAgainstEmulator is the acceptance test: `mapping fetch` against the
// emulator's demo org writes a skeleton that `mapping check` accepts, against the same org, once
// its TODOs are filled in. The demo mapping of docs/examples validates against it too.
func TestMappingFetchAndCheckAgainstEmulator(t *testing.T) {
	serveOrg(t, emulator.DemoSeed())

	path := filepath.Join(t.TempDir(), "mapping.yaml")
	code, _, stderr := runMapping(t, "fetch", "-o", path)
	require.Equal(t, exitOK, code, stderr)
	skel, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, want := range []string{"Support_EN", "Support_DE", "Billing", "name: Chat", "name: Messaging", "name: Case", "name: Phone",
		"Ready_for_cases: TODO", "On_a_call: TODO", "Away_from_desk: TODO", "Taking_notes: TODO", "Available: TODO", "English"} {
		require.Contains(t, string(skel), want)
	}

	code, _, stderr = runMapping(t, "check", path)
	require.Equal(t, exitError, code, "TODOs left")
	require.Contains(t, stderr, "still TODO")

	require.NoError(t, os.WriteFile(path, []byte(fillTODOs(t, string(skel))), 0o600))
	code, stdout, stderr := runMapping(t, "check", path)
	require.Equal(t, exitOK, code, "filled skeleton:\n%s\n%s", stderr, fillTODOs(t, string(skel)))
	require.Equal(t, path+": ok (checked against the org)\n", stdout)

	code, stdout, stderr = runMapping(t, "check", "../../docs/examples/demo-mapping.yaml")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "checked against the org")

	// Client credentials flow (no username) reads the org too.
	t.Setenv(envUsername, "")
	t.Setenv(envPassword, "")
	code, _, stderr = runMapping(t, "check", "../../docs/examples/demo-mapping.yaml")
	require.Equal(t, exitOK, code, stderr)

	// Wrong secret: a runtime error that does not print the secret.
	t.Setenv(envClientSecret, "wrong-secret-value")
	code, _, stderr = runMapping(t, "check", "../../docs/examples/demo-mapping.yaml")
	require.Equal(t, exitError, code)
	require.NotContains(t, stderr, "wrong-secret-value")
}

// TestExampleHasEveryKey: docs/examples/mapping.yaml is complete: every YAML key of the schema
// appears in it.
func TestExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../docs/examples/mapping.yaml")
	require.NoError(t, err)
	var keys []string
	var walk func(reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			if tag := f.Tag.Get("yaml"); tag != "" && tag != "-" {
				keys = append(keys, tag)
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[mapping.Config]())
	require.Greater(t, len(keys), 30)
	for _, k := range keys {
		require.Regexp(t, `(?m)^\s*(- )?`+k+`:`, string(data), "key %s is missing from the example", k)
	}
}
