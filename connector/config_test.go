package connector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// contractVariables are the variable names issue 11 makes a contract, plus the shutdown timeout.
var contractVariables = []string{
	"OMNIROUTE_SALESFORCE_LOGIN_URL",
	"OMNIROUTE_SALESFORCE_AUTH",
	"OMNIROUTE_SALESFORCE_CLIENT_ID",
	"OMNIROUTE_SALESFORCE_CLIENT_SECRET",
	"OMNIROUTE_SALESFORCE_USERNAME",
	"OMNIROUTE_SALESFORCE_PASSWORD",
	"OMNIROUTE_SALESFORCE_PRIVATE_KEY_FILE",
	"OMNIROUTE_SALESFORCE_API_VERSION",
	"OMNIROUTE_EVENTS",
	"OMNIROUTE_CDC_CHANNEL",
	"OMNIROUTE_MAPPING_FILE",
	"OMNIROUTE_HTTP_ADDR",
	"OMNIROUTE_STATE_DIR",
	"OMNIROUTE_ADMIN_TOKEN",
	"OMNIROUTE_AGENT_TOKEN_KEY",
	"OMNIROUTE_AGENT_ORIGINS",
	"OMNIROUTE_AGENT_SEND_BUFFER",
	"OMNIROUTE_LOG_LEVEL",
	"OMNIROUTE_LOG_FORMAT",
	"OMNIROUTE_SHUTDOWN_TIMEOUT",
	"OMNIROUTE_WAITING_CHECK",
	"OMNIROUTE_WRITER_IN_FLIGHT",
	"OMNIROUTE_LEADER_ELECTION",
	"OMNIROUTE_LEADER_LEASE",
	"OMNIROUTE_LEADER_LEASE_DURATION",
	"OMNIROUTE_LEADER_RENEW_DEADLINE",
	"OMNIROUTE_LEADER_RETRY_PERIOD",
	"OMNIROUTE_POD_NAME",
	"OMNIROUTE_POD_NAMESPACE",
}

const (
	secretValue   = "consumer-secret-5f2b9c"
	passwordValue = "pa55w0rd-and-token-77aa"
	adminValue    = "admin-token-0123456789abcdef"
	agentKeyValue = "agent-token-key-0123456789abcdef-0123"
)

// validConfig is a Config that passes Validate: password flow against an emulator.
func validConfig() Config {
	c := DefaultConfig()
	c.Salesforce.LoginURL = "http://127.0.0.1:9"
	c.Salesforce.ClientID = "client-id"
	c.Salesforce.ClientSecret = NewSecret(secretValue)
	c.Salesforce.Username = "integration@example.com"
	c.Salesforce.Password = NewSecret(passwordValue)
	c.MappingFile = "mapping.yaml"
	c.AdminToken = NewSecret(adminValue)
	c.AgentTokenKey = NewSecret(agentKeyValue)
	c.AgentOrigins = []string{"https://example.my.salesforce.com"}
	return c
}

func TestVariablesAreTheContract(t *testing.T) {
	t.Parallel()
	require.Empty(t, cmp.Diff(contractVariables, Variables()))
	require.Equal(t, "OMNIROUTE_SALESFORCE_PRIVATE_KEY_FILE", env("Salesforce", "PrivateKeyFile"))
	require.Equal(t, "OMNIROUTE_CDC_CHANNEL", env("CDCChannel"))
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	require.Equal(t, "https://login.salesforce.com", c.Salesforce.LoginURL)
	require.Equal(t, "64.0", c.Salesforce.APIVersion)
	require.Equal(t, EventsChannel, c.Events)
	require.Equal(t, "/data/ExternalRoutingChannel__chn", c.CDCChannel)
	require.Equal(t, ":8080", c.HTTPAddr)
	require.Equal(t, "info", c.LogLevel)
	require.Equal(t, "text", c.LogFormat)
	require.Equal(t, 30*time.Second, c.ShutdownTimeout.Duration)
	require.NoError(t, validConfig().Validate())
}

// TestUsage: `omniroute run -h` prints every variable with its default and meaning, and no
// secret.
func TestUsage(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, Usage(&b))
	out := b.String()
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	for _, v := range contractVariables {
		require.Contains(t, lines, v, out)
	}
	for v, def := range map[string]string{
		"OMNIROUTE_SALESFORCE_LOGIN_URL":   "https://login.salesforce.com",
		"OMNIROUTE_SALESFORCE_API_VERSION": "64.0",
		"OMNIROUTE_EVENTS":                 "channel",
		"OMNIROUTE_CDC_CHANNEL":            "/data/ExternalRoutingChannel__chn",
		"OMNIROUTE_HTTP_ADDR":              ":8080",
		"OMNIROUTE_LOG_LEVEL":              "info",
		"OMNIROUTE_LOG_FORMAT":             "text",
		"OMNIROUTE_SHUTDOWN_TIMEOUT":       "30s",
	} {
		require.Contains(t, lines[v], " "+def+" ", v)
	}
	require.Contains(t, lines["OMNIROUTE_SALESFORCE_AUTH"], "jwt, client_credentials or password")
	require.Contains(t, lines["OMNIROUTE_SALESFORCE_API_VERSION"], "63.0 or later")
	require.Contains(t, lines["OMNIROUTE_ADMIN_TOKEN"], "(secret)")
}

// TestValidateReportsEveryProblem: every bad value is reported at once, each naming its
// variable, and no secret appears in the messages.
func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Salesforce.LoginURL = "login.salesforce.com"
	c.Salesforce.APIVersion = "64"
	c.Events = "cdc"
	c.HTTPAddr = "8080"
	c.AdminToken = NewSecret("short-" + secretValue[:3])
	c.AgentTokenKey = NewSecret("short-" + agentKeyValue[:5])
	c.AgentOrigins = []string{"https://ok.example.com", "ftp://example.com/path"}
	c.AgentSendBuffer = -1
	c.WriterInFlight = 0
	c.LogLevel = "verbose"
	c.LogFormat = "yaml"
	c.MappingFile = ""
	require.NoError(t, c.ShutdownTimeout.Decode("soon"))
	c.unknown = []string{"OMNIROUTE_SALESFROCE_USERNAME"}
	err := c.Validate()
	require.Error(t, err)
	msgs := strings.Split(err.Error(), "\n")
	want := []string{
		`OMNIROUTE_SALESFROCE_USERNAME: unknown variable`,
		`OMNIROUTE_SALESFORCE_LOGIN_URL: "login.salesforce.com" is not a login URL`,
		`OMNIROUTE_SALESFORCE_API_VERSION: "64" is not an API version`,
		`OMNIROUTE_EVENTS: "cdc" is not one of channel, entities or pushtopic`,
		`OMNIROUTE_HTTP_ADDR: "8080" is not a listen address`,
		`OMNIROUTE_ADMIN_TOKEN: too short (9 characters)`,
		`OMNIROUTE_AGENT_TOKEN_KEY: too short (11 characters)`,
		`OMNIROUTE_AGENT_SEND_BUFFER: -1 is negative`,
		`OMNIROUTE_WRITER_IN_FLIGHT: 0 is not 1 to 16`,
		`OMNIROUTE_AGENT_ORIGINS: origin "ftp://example.com/path" is not scheme://host[:port]`,
		`OMNIROUTE_LOG_LEVEL: "verbose" is not one of`,
		`OMNIROUTE_LOG_FORMAT: "yaml" is not text or json`,
		`OMNIROUTE_SHUTDOWN_TIMEOUT: "soon" is not a duration`,
		`OMNIROUTE_MAPPING_FILE: required`,
	}
	require.Len(t, msgs, len(want), err.Error())
	for i, w := range want {
		require.True(t, strings.HasPrefix(msgs[i], w), "message %d: %q, want prefix %q", i, msgs[i], w)
	}
	require.NotContains(t, err.Error(), secretValue[:3]+"\n")
	require.NotContains(t, err.Error(), "short-")
	require.NotContains(t, err.Error(), agentKeyValue[:5])
}

// TestValidateAgentSendBuffer: a send buffer the socket option cannot hold is refused. The
// kernel takes SO_SNDBUF as a 32-bit int: 4 GiB would arrive as 0, the kernel's smallest
// buffer, the opposite of what was asked, without a word.
func TestValidateAgentSendBuffer(t *testing.T) {
	t.Parallel()
	for _, ok := range []int{0, 4096, 16384, math.MaxInt32} {
		c := validConfig()
		c.AgentSendBuffer = ok
		require.NoError(t, c.Validate(), ok)
	}
	for _, bad := range []int{math.MaxInt32 + 1, 1 << 32} {
		c := validConfig()
		c.AgentSendBuffer = bad
		err := c.Validate()
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), fmt.Sprintf("OMNIROUTE_AGENT_SEND_BUFFER: %d is over %d", bad, math.MaxInt32))
	}
}

// TestAPIVersionInCDCModes: below 63.0 is refused in the CDC modes, with the reason, and allowed
// with PushTopics.
func TestAPIVersionInCDCModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{EventsChannel, EventsEntities} {
		c := validConfig()
		c.Events = mode
		c.Salesforce.APIVersion = "62.0"
		require.EqualError(t, c.Validate(), "OMNIROUTE_SALESFORCE_API_VERSION: 62.0 is too old for OMNIROUTE_EVENTS="+mode+
			": AgentWork change events exist from API 63.0")
		c.Salesforce.APIVersion = "63.0"
		require.NoError(t, c.Validate())
	}
	c := validConfig()
	c.Events = EventsPushTopic
	c.Salesforce.APIVersion = "41.0"
	require.NoError(t, c.Validate())
	c.Events = EventsChannel
	c.Salesforce.APIVersion = "64.0"
	c.CDCChannel = "/data/AgentWorkChangeEvent"
	require.ErrorContains(t, c.Validate(), "OMNIROUTE_CDC_CHANNEL: \"/data/AgentWorkChangeEvent\" is not a custom channel")
}

func TestAuthMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                          string
		auth, secret, user, pw, key   string
		want                          string
		wantErr                       string
		wantValidateErr, noValidation bool
	}{
		{name: "client credentials inferred", secret: "s", want: AuthClientCredentials},
		{name: "password inferred", secret: "s", user: "u", pw: "p", want: AuthPassword},
		{name: "jwt inferred", user: "u", key: "k.pem", want: AuthJWT},
		{name: "jwt inferred with a secret set", secret: "s", user: "u", key: "k.pem", want: AuthJWT},
		{name: "key and password are ambiguous", secret: "s", user: "u", pw: "p", key: "k.pem",
			wantErr: "OMNIROUTE_SALESFORCE_AUTH: unset, and both OMNIROUTE_SALESFORCE_PRIVATE_KEY_FILE and OMNIROUTE_SALESFORCE_PASSWORD are set: set it to jwt or password"},
		{name: "explicit jwt resolves the ambiguity", auth: "jwt", secret: "s", user: "u", pw: "p", key: "k.pem", want: AuthJWT},
		{name: "username alone is ambiguous", secret: "s", user: "u", wantErr: "OMNIROUTE_SALESFORCE_AUTH: unset, and OMNIROUTE_SALESFORCE_USERNAME is set without"},
		{name: "nothing implies a flow", wantErr: "OMNIROUTE_SALESFORCE_AUTH: unset, and no credentials imply a flow"},
		{name: "unknown mode", auth: "saml", wantErr: `OMNIROUTE_SALESFORCE_AUTH: "saml" is not one of jwt, client_credentials or password`},
		{name: "explicit password needs its credentials", auth: "password", want: AuthPassword, wantValidateErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			c.Salesforce.Auth, c.Salesforce.ClientSecret, c.Salesforce.Username = tc.auth, NewSecret(tc.secret), tc.user
			c.Salesforce.Password, c.Salesforce.PrivateKeyFile = NewSecret(tc.pw), tc.key
			got, err := c.Salesforce.AuthMode()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.ErrorContains(t, c.Validate(), tc.wantErr, "Validate reports it too")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			if tc.wantValidateErr {
				require.EqualError(t, c.Validate(),
					"OMNIROUTE_SALESFORCE_CLIENT_SECRET: required by OMNIROUTE_SALESFORCE_AUTH=password: the connected app's consumer secret\n"+
						"OMNIROUTE_SALESFORCE_USERNAME: required by OMNIROUTE_SALESFORCE_AUTH=password: the user to log in as\n"+
						"OMNIROUTE_SALESFORCE_PASSWORD: required by OMNIROUTE_SALESFORCE_AUTH=password: the user's password and security token")
				return
			}
			require.NoError(t, c.Validate())
		})
	}

	// Without a client id the mapping commands work offline; run needs one.
	c := validConfig()
	c.Salesforce = DefaultConfig().Salesforce
	require.NoError(t, c.ValidateOrgAccess())
	require.EqualError(t, c.Validate(), "OMNIROUTE_SALESFORCE_CLIENT_ID: required: the connected app's consumer key")
}

// TestSecretsRedacted: a secret never shows in fmt (any verb), slog (text and JSON), JSON, the
// usage table or validation errors.
func TestSecretsRedacted(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Salesforce.LoginURL = "not a url" // a validation error alongside the secrets
	secrets := []string{secretValue, passwordValue, adminValue, agentKeyValue}

	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T %v"} {
		_, _ = fmt.Fprintf(&out, verb+"\n", c)
		_, _ = fmt.Fprintf(&out, verb+"\n", c.Salesforce.ClientSecret)
		_, _ = fmt.Fprintf(&out, verb+"\n", &c)
	}
	_, _ = fmt.Fprintln(&out, c.Salesforce, c.AdminToken)
	js, err := json.Marshal(c)
	require.NoError(t, err)
	out.Write(js)
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		l := slog.New(h)
		l.Info("config", "config", c)
		l.Info("secret", "secret", c.Salesforce.Password, "salesforce", c.Salesforce)
	}
	require.NoError(t, Usage(&out))
	out.WriteString(c.Validate().Error())

	for _, s := range secrets {
		require.NotContains(t, out.String(), s)
	}
	require.Contains(t, out.String(), `"salesforce_client_secret":"<secret>"`)
	require.Contains(t, out.String(), `admin_token=<secret>`)
	require.Contains(t, out.String(), `agent_token_key=<secret>`)
	require.Contains(t, string(js), `"AdminToken":"\u003csecret\u003e"`) // encoding/json escapes < and >
	require.Contains(t, string(js), `"ShutdownTimeout":"30s"`)
	require.Equal(t, "<secret>", fmt.Sprint(c.AdminToken))
	require.Empty(t, fmt.Sprint(Secret{}), "an unset secret shows as empty")
	require.Equal(t, adminValue, c.AdminToken.Reveal())
}

// TestLoadConfig reads the real environment (so it is not parallel): defaults fill what is
// unset or empty, values are read, unknown OMNIROUTE_* variables and a bad duration are
// reported by Validate with every other problem.
func TestLoadConfig(t *testing.T) {
	clearEnv(t)
	t.Setenv("OMNIROUTE_SALESFORCE_CLIENT_ID", "cid")
	t.Setenv("OMNIROUTE_SALESFORCE_CLIENT_SECRET", secretValue)
	t.Setenv("OMNIROUTE_SALESFORCE_LOGIN_URL", "") // empty: the default
	t.Setenv("OMNIROUTE_MAPPING_FILE", "/etc/omniroute/mapping.yaml")
	t.Setenv("OMNIROUTE_SHUTDOWN_TIMEOUT", "10s")
	c, err := LoadConfig()
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, "https://login.salesforce.com", c.Salesforce.LoginURL)
	require.Equal(t, secretValue, c.Salesforce.ClientSecret.Reveal())
	require.Equal(t, 10*time.Second, c.ShutdownTimeout.Duration)
	require.Equal(t, 2, c.WriterInFlight, "unset: the default")
	mode, err := c.Salesforce.AuthMode()
	require.NoError(t, err)
	require.Equal(t, AuthClientCredentials, mode)

	t.Setenv("OMNIROUTE_SHUTDOWN_TIMEOUT", "ten seconds")
	t.Setenv("OMNIROUTE_LOG_FORMAT", "xml")
	t.Setenv("OMNIROUTE_MAPPING_FIEL", "typo.yaml")
	t.Setenv("OMNIROUTE_WRITER_IN_FLIGHT", "0") // set: refused, not taken for unset
	c, err = LoadConfig()
	require.NoError(t, err)
	require.EqualError(t, c.Validate(), "OMNIROUTE_MAPPING_FIEL: unknown variable (`omniroute run -h` lists them all)\n"+
		`OMNIROUTE_WRITER_IN_FLIGHT: 0 is not 1 to 16`+"\n"+
		`OMNIROUTE_LOG_FORMAT: "xml" is not text or json`+"\n"+
		`OMNIROUTE_SHUTDOWN_TIMEOUT: "ten seconds" is not a duration such as 30s`)
}

// TestLoadConfigEmptyNumbers: a number or a flag set to the empty string (a Helm value left
// empty) counts as unset, like every other variable: its default, not a refusal to start; the
// environment is left as it was.
func TestLoadConfigEmptyNumbers(t *testing.T) {
	clearEnv(t)
	for _, k := range []string{"OMNIROUTE_WRITER_IN_FLIGHT", "OMNIROUTE_AGENT_SEND_BUFFER", "OMNIROUTE_LEADER_ELECTION"} {
		t.Setenv(k, "")
	}
	c, err := LoadConfig()
	require.NoError(t, err)
	require.Equal(t, 2, c.WriterInFlight)
	require.Zero(t, c.AgentSendBuffer)
	require.False(t, c.Leader.Election)
	v, ok := os.LookupEnv("OMNIROUTE_WRITER_IN_FLIGHT")
	require.True(t, ok)
	require.Empty(t, v)
}

// clearEnv unsets every OMNIROUTE_* variable for the test (restored afterwards).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, EnvPrefix+"_") {
			t.Setenv(k, "")
			require.NoError(t, os.Unsetenv(k))
		}
	}
}

// TestLeaderConfig: leader election is off by default; when on, its variables are checked
// against client-go's rules, every problem at once, each naming its variable.
func TestLeaderConfig(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	require.False(t, c.Leader.Election)
	require.Equal(t, "omniroute", c.Leader.Lease)
	require.Equal(t, 15*time.Second, c.Leader.LeaseDuration.Duration)
	require.Equal(t, 10*time.Second, c.Leader.RenewDeadline.Duration)
	require.Equal(t, 2*time.Second, c.Leader.RetryPeriod.Duration)

	on := validConfig()
	on.Leader.Election = true
	require.NoError(t, on.Validate())

	off := validConfig()
	off.Leader.Lease = "Not A Name"
	require.NoError(t, off.Validate(), "checked only when leader election is on")

	tests := []struct {
		name   string
		mutate func(*LeaderConfig)
		want   []string
	}{
		{"bad name and order", func(l *LeaderConfig) {
			l.Lease = "Omni_Route"
			l.LeaseDuration.Duration = 2500 * time.Millisecond
			l.RenewDeadline.Duration = 3 * time.Second
			l.RetryPeriod.Duration = 3 * time.Second
		}, []string{
			`OMNIROUTE_LEADER_LEASE: "Omni_Route" is not a Kubernetes object name`,
			"OMNIROUTE_LEADER_LEASE_DURATION: 2.5s is not whole seconds",
			"OMNIROUTE_LEADER_RENEW_DEADLINE: 3s must be below OMNIROUTE_LEADER_LEASE_DURATION (2.5s)",
			"OMNIROUTE_LEADER_RETRY_PERIOD: 3s must be below OMNIROUTE_LEADER_RENEW_DEADLINE (3s)",
		}},
		{"no drain margin", func(l *LeaderConfig) {
			l.LeaseDuration.Duration = 15 * time.Second
			l.RenewDeadline.Duration = 10 * time.Second
			l.RetryPeriod.Duration = 5 * time.Second
		}, []string{
			"OMNIROUTE_LEADER_LEASE_DURATION: 15s must exceed OMNIROUTE_LEADER_RENEW_DEADLINE + OMNIROUTE_LEADER_RETRY_PERIOD (15s)",
		}},
		{"unparsed and zero", func(l *LeaderConfig) {
			_ = l.LeaseDuration.Decode("soon")
			l.RetryPeriod.Duration = 0
		}, []string{
			`OMNIROUTE_LEADER_LEASE_DURATION: "soon" is not a duration`,
			"OMNIROUTE_LEADER_RETRY_PERIOD: must be positive",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			c.Leader.Election = true
			tc.mutate(&c.Leader)
			err := c.Validate()
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.Len(t, strings.Split(err.Error(), "\n"), len(tc.want))
		})
	}
}
