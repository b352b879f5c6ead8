package connector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/omniroute/omniroute/salesforce"
)

// EnvPrefix is the prefix of every environment variable the daemon reads.
const EnvPrefix = "OMNIROUTE"

// Events modes (OMNIROUTE_EVENTS).
const (
	// EventsChannel subscribes once to the custom CDC channel (OMNIROUTE_CDC_CHANNEL), whose
	// events are filtered, enriched and single-record.
	EventsChannel = "channel"
	// EventsEntities subscribes to the per-entity CDC channels of PendingServiceRouting,
	// AgentWork and UserServicePresence.
	EventsEntities = "entities"
	// EventsPushTopic subscribes to PushTopics, creating them when they are missing.
	EventsPushTopic = "pushtopic"
)

// Auth modes (OMNIROUTE_SALESFORCE_AUTH).
const (
	AuthJWT               = "jwt"
	AuthClientCredentials = "client_credentials"
	AuthPassword          = "password"
)

// MinCDCAPIVersion is the lowest API version the CDC event modes accept: AgentWorkChangeEvent
// exists from API 63.0.
const MinCDCAPIVersion = 63.0

// Config is the daemon's whole configuration, read from OMNIROUTE_* environment variables by
// LoadConfig (envconfig: each field's variable, default and meaning are in its tags, and
// `omniroute run -h` prints them with Usage). A variable that is set but empty counts as
// unset. Tests build a Config from DefaultConfig instead of the environment.
//
// Secrets are Secret values: they print, log and marshal as "<secret>".
type Config struct {
	Salesforce SalesforceConfig

	Events          string   `split_words:"true" default:"channel" desc:"where events come from: channel (the custom CDC channel), entities (per-entity CDC channels) or pushtopic"`
	CDCChannel      string   `split_words:"true" default:"/data/ExternalRoutingChannel__chn" desc:"the custom CDC channel of OMNIROUTE_EVENTS=channel"`
	MappingFile     string   `split_words:"true" desc:"the mapping file (queues to plans, channels, capacity, presence); required by run"`
	HTTPAddr        string   `split_words:"true" default:":8080" desc:"listen address of /metrics, /healthz, /readyz and the admin API"`
	StateDir        string   `split_words:"true" desc:"directory of the replay checkpoints; empty keeps them in memory (a restart reconciles from scratch)"`
	AdminToken      Secret   `split_words:"true" desc:"bearer token of the admin endpoints (/v1/..., POST /-/reload); empty refuses them all (secret)"`
	AgentTokenKey   Secret   `split_words:"true" desc:"HMAC key of the short-lived demo tokens the agent websocket accepts (omniroute demo); empty refuses them; at least 32 characters (secret)"`
	AgentOrigins    []string `split_words:"true" desc:"comma-separated browser origins (scheme://host[:port]) allowed to open the agent websocket; empty refuses every browser origin"`
	AgentSendBuffer int      `split_words:"true" desc:"socket send buffer of each agent websocket, in bytes; 0 leaves it to the kernel; a smaller one finds a stalled console sooner (docs/agent-protocol.md)"`
	LogLevel        string   `split_words:"true" default:"info" desc:"log level: debug, info, warn or error"`
	LogFormat       string   `split_words:"true" default:"text" desc:"log format: text or json"`
	ShutdownTimeout Duration `split_words:"true" default:"30s" desc:"how long a graceful stop (SIGTERM, SIGINT) may take before the daemon exits anyway"`
	WaitingCheck    Duration `split_words:"true" default:"30s" desc:"how often one SOQL query checks that the PSRs the daemon holds still exist (a PSR deleted without a delivered DELETE: the customer left, the owner changed)"`
	WriterInFlight  int      `split_words:"true" default:"2" desc:"the most AgentWork insert calls in flight at once, 1 to 16: with more, a slow org's answers overlap (each call carries up to 200 offers)"`

	Leader       LeaderConfig
	PodName      string `split_words:"true" desc:"this replica's identity in the leader election Lease (the downward API's metadata.name); default: the host name"`
	PodNamespace string `split_words:"true" desc:"namespace of the leader election Lease (the downward API's metadata.namespace); default: the service account's namespace"`

	// unknown are the OMNIROUTE_* variables of the environment no field reads (LoadConfig).
	unknown []string
}

// LeaderConfig is active/standby on a Kubernetes Lease: OMNIROUTE_LEADER_* and the pod's own
// name and namespace (leader.go, docs/operations.md "High availability").
type LeaderConfig struct {
	Election      bool     `default:"false" desc:"true: replicas elect one leader on a Kubernetes Lease (in-cluster); only it subscribes, routes and writes, and it keeps the replay ids in the Lease"`
	Lease         string   `default:"omniroute" desc:"name of the Lease (coordination.k8s.io) in the pod's namespace"`
	LeaseDuration Duration `split_words:"true" default:"15s" desc:"how long a standby waits after the last renewal before taking the Lease over (whole seconds)"`
	RenewDeadline Duration `split_words:"true" default:"10s" desc:"how long the leader keeps failing to renew before it stops routing and exits; the lease duration must exceed it plus the retry period, and the rest is the deposed leader's drain"`
	RetryPeriod   Duration `split_words:"true" default:"2s" desc:"how often the Lease is tried and renewed, and the shortest gap between two replay id writes; below the renew deadline"`
}

// SalesforceConfig is how the daemon reaches the org: OMNIROUTE_SALESFORCE_*.
type SalesforceConfig struct {
	LoginURL       string `split_words:"true" default:"https://login.salesforce.com" desc:"OAuth login host: https://login.salesforce.com, https://test.salesforce.com or the My Domain URL"`
	Auth           string `desc:"OAuth flow: jwt, client_credentials or password; inferred from the credentials set when unset and unambiguous"`
	ClientID       string `split_words:"true" desc:"the connected app's consumer key"`
	ClientSecret   Secret `split_words:"true" desc:"the connected app's consumer secret (client_credentials, password) (secret)"`
	Username       string `desc:"the integration user (jwt, password)"`
	Password       Secret `desc:"the integration user's password followed by its security token (password) (secret)"`
	PrivateKeyFile string `split_words:"true" desc:"PEM RSA private key whose certificate is on the connected app (jwt)"`
	APIVersion     string `split_words:"true" default:"64.0" desc:"REST and Streaming API version; the CDC modes need 63.0 or later"`
}

// Configured reports whether credentials are set at all (a client id): without them the mapping
// commands work offline.
func (s SalesforceConfig) Configured() bool { return s.ClientID != "" }

// DefaultConfig returns the configuration with every default and nothing else set.
func DefaultConfig() Config {
	var c Config
	fillDefaults(reflect.ValueOf(&c).Elem())
	return c
}

// LoadConfig reads the configuration from the environment. It fails only when the environment
// cannot be read as a Config at all; Validate reports every problem with the values.
func LoadConfig() (Config, error) {
	var c Config
	// A variable set to "" counts as unset (a Helm value left empty, for instance): each is
	// unset while envconfig reads the environment, and set back after, so that envconfig gives
	// it its default (it would refuse "" for a number or a flag, and keep "" for a string).
	for _, k := range Variables() {
		if v, ok := os.LookupEnv(k); ok && v == "" {
			_ = os.Unsetenv(k)
			defer func() { _ = os.Setenv(k, "") }()
		}
	}
	if err := envconfig.Process(EnvPrefix, &c); err != nil {
		return c, fmt.Errorf("read the environment: %w", err)
	}
	c.unknown = unknownVariables(os.Environ())
	return c, nil
}

// fillDefaults gives every field with a default tag its default (DefaultConfig, which reads no
// environment).
func fillDefaults(v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f, sf := v.Field(i), t.Field(i)
		if !sf.IsExported() {
			continue
		}
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeFor[Duration]() && sf.Type != reflect.TypeFor[Secret]() {
			fillDefaults(f)
			continue
		}
		def, ok := sf.Tag.Lookup("default")
		if !ok {
			continue
		}
		switch p := f.Addr().Interface().(type) {
		case *string:
			*p = def
		case *Duration:
			_ = p.Decode(def)
		case *int:
			*p, _ = strconv.Atoi(def)
		}
	}
}

// Variables returns every variable of the Config, in order.
func Variables() []string {
	var b bytes.Buffer
	if err := envconfig.Usagef(EnvPrefix, &Config{}, &b, "{{range .}}{{usage_key .}}\n{{end}}"); err != nil {
		panic(err) // Config is a valid envconfig specification, checked by the tests
	}
	return strings.Fields(b.String())
}

// unknownVariables lists the OMNIROUTE_* variables of env that no Config field reads: most
// often a typo.
func unknownVariables(env []string) []string {
	known := Variables()
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, EnvPrefix+"_") && !slices.Contains(known, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Usage writes envconfig's table of every variable, its type, default and meaning.
func Usage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', 0)
	if err := envconfig.Usagef(EnvPrefix, &Config{}, tw, envconfig.DefaultTableFormat); err != nil {
		return fmt.Errorf("write the configuration usage: %w", err)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write the configuration usage: %w", err)
	}
	return nil
}

// env names the variable of a Config field path, e.g. env("Salesforce", "LoginURL").
func env(path ...string) string {
	key := EnvPrefix
	t := reflect.TypeFor[Config]()
	for _, name := range path {
		sf, ok := t.FieldByName(name)
		if !ok {
			panic("connector: no Config field " + strings.Join(path, "."))
		}
		key += "_" + envName(sf)
		t = sf.Type
	}
	return key
}

var (
	wordRe    = regexp.MustCompile("([^A-Z]+|[A-Z]+[^A-Z]+|[A-Z]+)")
	acronymRe = regexp.MustCompile("([A-Z]+)([A-Z][^A-Z]+)")
)

// envName is envconfig's name for a field (its split_words rule).
func envName(sf reflect.StructField) string {
	if sf.Tag.Get("split_words") != "true" {
		return strings.ToUpper(sf.Name)
	}
	var words []string
	for _, w := range wordRe.FindAllString(sf.Name, -1) {
		if m := acronymRe.FindStringSubmatch(w); m != nil {
			words = append(words, m[1], m[2])
		} else {
			words = append(words, w)
		}
	}
	return strings.ToUpper(strings.Join(words, "_"))
}

var apiVersionRe = regexp.MustCompile(`^[1-9][0-9]*\.0$`)

// Validate checks everything `omniroute run` needs and returns every problem at once
// (errors.Join), each naming its variable. Secrets never appear in the messages.
func (c Config) Validate() error {
	errs := c.validateCommon()
	if c.MappingFile == "" {
		errs = append(errs, fmt.Errorf("%s: required: the mapping file to route with", env("MappingFile")))
	}
	if !c.Salesforce.Configured() {
		errs = append(errs, fmt.Errorf("%s: required: the connected app's consumer key", env("Salesforce", "ClientID")))
	} else {
		errs = append(errs, c.Salesforce.validateCredentials()...)
	}
	errs = append(errs, c.Leader.validate()...)
	return errors.Join(errs...)
}

// ValidateOrgAccess checks what the mapping commands need to read the org: the Salesforce
// variables (credentials only when a client id is set) and the logging ones.
func (c Config) ValidateOrgAccess() error {
	errs := c.validateCommon()
	if c.Salesforce.Configured() {
		errs = append(errs, c.Salesforce.validateCredentials()...)
	}
	return errors.Join(errs...)
}

func (c Config) validateCommon() []error {
	var errs []error
	for _, k := range c.unknown {
		errs = append(errs, fmt.Errorf("%s: unknown variable (`omniroute run -h` lists them all)", k))
	}
	s := c.Salesforce
	if u, err := url.Parse(s.LoginURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		errs = append(errs, fmt.Errorf("%s: %q is not a login URL such as https://login.salesforce.com", env("Salesforce", "LoginURL"), s.LoginURL))
	}
	cdc := c.Events == EventsChannel || c.Events == EventsEntities
	if !apiVersionRe.MatchString(s.APIVersion) {
		errs = append(errs, fmt.Errorf("%s: %q is not an API version such as 64.0", env("Salesforce", "APIVersion"), s.APIVersion))
	} else if v, _ := strconv.ParseFloat(s.APIVersion, 64); cdc && v < MinCDCAPIVersion {
		errs = append(errs, fmt.Errorf("%s: %s is too old for %s=%s: AgentWork change events exist from API %.1f",
			env("Salesforce", "APIVersion"), s.APIVersion, env("Events"), c.Events, MinCDCAPIVersion))
	}
	switch c.Events {
	case EventsChannel:
		if !strings.HasPrefix(c.CDCChannel, "/data/") || !strings.HasSuffix(c.CDCChannel, "__chn") || len(c.CDCChannel) <= len("/data/__chn") {
			errs = append(errs, fmt.Errorf("%s: %q is not a custom channel such as /data/ExternalRoutingChannel__chn", env("CDCChannel"), c.CDCChannel))
		}
	case EventsEntities, EventsPushTopic:
	default:
		errs = append(errs, fmt.Errorf("%s: %q is not one of channel, entities or pushtopic", env("Events"), c.Events))
	}
	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("%s: %q is not a listen address such as :8080", env("HTTPAddr"), c.HTTPAddr))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		errs = append(errs, fmt.Errorf("%s: %q has no valid port", env("HTTPAddr"), c.HTTPAddr))
	}
	if tok := c.AdminToken.Reveal(); tok != "" && len(tok) < MinAdminTokenLength {
		errs = append(errs, fmt.Errorf("%s: too short (%d characters); use at least %d, e.g. from `openssl rand -hex 24`",
			env("AdminToken"), len(tok), MinAdminTokenLength))
	}
	if k := c.AgentTokenKey.Reveal(); k != "" && len(k) < MinAgentTokenKeyLength {
		errs = append(errs, fmt.Errorf("%s: too short (%d characters); use at least %d, e.g. from `openssl rand -hex 32`",
			env("AgentTokenKey"), len(k), MinAgentTokenKeyLength))
	}
	switch {
	case c.AgentSendBuffer < 0:
		errs = append(errs, fmt.Errorf("%s: %d is negative", env("AgentSendBuffer"), c.AgentSendBuffer))
	case c.AgentSendBuffer > math.MaxInt32: // SO_SNDBUF is a C int: more would wrap to a tiny buffer
		errs = append(errs, fmt.Errorf("%s: %d is over %d", env("AgentSendBuffer"), c.AgentSendBuffer, math.MaxInt32))
	}
	if c.WriterInFlight < 1 || c.WriterInFlight > MaxMaxInFlight {
		errs = append(errs, fmt.Errorf("%s: %d is not 1 to %d", env("WriterInFlight"), c.WriterInFlight, MaxMaxInFlight))
	}
	if _, err := parseOrigins(c.AgentOrigins); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", env("AgentOrigins"), err))
	}
	if _, err := c.slogLevel(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %q is not one of debug, info, warn or error", env("LogLevel"), c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("%s: %q is not text or json", env("LogFormat"), c.LogFormat))
	}
	if c.WaitingCheck.invalid != "" {
		errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 30s", env("WaitingCheck"), c.WaitingCheck.invalid))
	} else if c.WaitingCheck.Duration <= 0 {
		errs = append(errs, fmt.Errorf("%s: must be positive, such as 30s", env("WaitingCheck")))
	}
	if c.ShutdownTimeout.invalid != "" {
		errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 30s", env("ShutdownTimeout"), c.ShutdownTimeout.invalid))
	} else if c.ShutdownTimeout.Duration <= 0 {
		errs = append(errs, fmt.Errorf("%s: must be positive, such as 30s", env("ShutdownTimeout")))
	}
	return errs
}

// leaseNameRe is a Kubernetes object name (a DNS-1123 subdomain).
var leaseNameRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// validate checks the leader election variables, only when leader election is on:
// client-go's own rules (lease > renew deadline > retry period), and a lease duration of
// whole seconds, as the Lease stores it.
func (l LeaderConfig) validate() []error {
	if !l.Election {
		return nil
	}
	var errs []error
	if !leaseNameRe.MatchString(l.Lease) || len(l.Lease) > 253 {
		errs = append(errs, fmt.Errorf("%s: %q is not a Kubernetes object name such as omniroute", env("Leader", "Lease"), l.Lease))
	}
	ok := true
	for _, f := range []struct {
		name string
		d    Duration
	}{{"LeaseDuration", l.LeaseDuration}, {"RenewDeadline", l.RenewDeadline}, {"RetryPeriod", l.RetryPeriod}} {
		switch {
		case f.d.invalid != "":
			errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 10s", env("Leader", f.name), f.d.invalid))
			ok = false
		case f.d.Duration <= 0:
			errs = append(errs, fmt.Errorf("%s: must be positive, such as 10s", env("Leader", f.name)))
			ok = false
		}
	}
	if !ok {
		return errs
	}
	if l.LeaseDuration.Duration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("%s: %s is not whole seconds, as the Lease stores it", env("Leader", "LeaseDuration"), l.LeaseDuration.Duration))
	}
	if l.RenewDeadline.Duration >= l.LeaseDuration.Duration {
		errs = append(errs, fmt.Errorf("%s: %s must be below %s (%s)", env("Leader", "RenewDeadline"), l.RenewDeadline.Duration,
			env("Leader", "LeaseDuration"), l.LeaseDuration.Duration))
	}
	if l.RetryPeriod.Duration >= l.RenewDeadline.Duration {
		errs = append(errs, fmt.Errorf("%s: %s must be below %s (%s)", env("Leader", "RetryPeriod"), l.RetryPeriod.Duration,
			env("Leader", "RenewDeadline"), l.RenewDeadline.Duration))
	}
	if len(errs) == 0 && l.LeaseDuration.Duration <= l.RenewDeadline.Duration+l.RetryPeriod.Duration {
		// the deposed leader's drain (maxDrain) fits in what is left
		errs = append(errs, fmt.Errorf("%s: %s must exceed %s + %s (%s): a deposed leader's last writes are answered in the difference",
			env("Leader", "LeaseDuration"), l.LeaseDuration.Duration, env("Leader", "RenewDeadline"), env("Leader", "RetryPeriod"),
			l.RenewDeadline.Duration+l.RetryPeriod.Duration))
	}
	return errs
}

// MinAdminTokenLength is the shortest OMNIROUTE_ADMIN_TOKEN accepted.
const MinAdminTokenLength = 16

// validateCredentials checks that the credentials fit one OAuth flow.
func (s SalesforceConfig) validateCredentials() []error {
	grant, err := s.authMode()
	if err != nil {
		return []error{err}
	}
	var errs []error
	need := func(ok bool, field, why string) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: required by %s=%s: %s", env("Salesforce", field), env("Salesforce", "Auth"), grant, why))
		}
	}
	switch grant {
	case AuthJWT:
		need(s.Username != "", "Username", "the user the token acts as")
		need(s.PrivateKeyFile != "", "PrivateKeyFile", "the key that signs the JWT")
	case AuthPassword:
		need(s.ClientSecret.Reveal() != "", "ClientSecret", "the connected app's consumer secret")
		need(s.Username != "", "Username", "the user to log in as")
		need(s.Password.Reveal() != "", "Password", "the user's password and security token")
	case AuthClientCredentials:
		need(s.ClientSecret.Reveal() != "", "ClientSecret", "the connected app's consumer secret")
	}
	return errs
}

// AuthMode is the OAuth flow: OMNIROUTE_SALESFORCE_AUTH, or the one the credentials imply.
func (s SalesforceConfig) AuthMode() (string, error) { return s.authMode() }

func (s SalesforceConfig) authMode() (string, error) {
	authVar := env("Salesforce", "Auth")
	switch s.Auth {
	case AuthJWT, AuthClientCredentials, AuthPassword:
		return s.Auth, nil
	case "":
	default:
		return "", fmt.Errorf("%s: %q is not one of jwt, client_credentials or password", authVar, s.Auth)
	}
	key, pw := s.PrivateKeyFile != "", s.Password.Reveal() != ""
	switch {
	case key && pw:
		return "", fmt.Errorf("%s: unset, and both %s and %s are set: set it to jwt or password",
			authVar, env("Salesforce", "PrivateKeyFile"), env("Salesforce", "Password"))
	case key:
		return AuthJWT, nil
	case pw:
		return AuthPassword, nil
	case s.Username != "":
		return "", fmt.Errorf("%s: unset, and %s is set without %s (jwt) or %s (password): set the one you mean",
			authVar, env("Salesforce", "Username"), env("Salesforce", "PrivateKeyFile"), env("Salesforce", "Password"))
	case s.ClientSecret.Reveal() != "":
		return AuthClientCredentials, nil
	default:
		return "", fmt.Errorf("%s: unset, and no credentials imply a flow: set %s (jwt), %s (password) or %s (client_credentials)",
			authVar, env("Salesforce", "PrivateKeyFile"), env("Salesforce", "Password"), env("Salesforce", "ClientSecret"))
	}
}

// grant maps an auth mode to the salesforce package's grant.
func grant(mode string) salesforce.Grant {
	switch mode {
	case AuthJWT:
		return salesforce.GrantJWTBearer
	case AuthPassword:
		return salesforce.GrantPassword
	default:
		return salesforce.GrantClientCredentials
	}
}

func (c Config) slogLevel() (slog.Level, error) {
	var l slog.Level
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return l, fmt.Errorf("unknown log level %q", c.LogLevel)
	}
	err := l.UnmarshalText([]byte(c.LogLevel))
	return l, err
}

// NewLogger builds the daemon's logger from OMNIROUTE_LOG_LEVEL and OMNIROUTE_LOG_FORMAT,
// writing to w. Call it on a validated Config.
func (c Config) NewLogger(w io.Writer) *slog.Logger {
	level, _ := c.slogLevel()
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// LogValue logs the effective configuration, secrets redacted.
func (c Config) LogValue() slog.Value {
	s := c.Salesforce
	mode, _ := s.authMode()
	return slog.GroupValue(
		slog.String("salesforce_login_url", s.LoginURL),
		slog.String("salesforce_auth", mode),
		slog.String("salesforce_client_id", s.ClientID),
		slog.Any("salesforce_client_secret", s.ClientSecret),
		slog.String("salesforce_username", s.Username),
		slog.Any("salesforce_password", s.Password),
		slog.String("salesforce_private_key_file", s.PrivateKeyFile),
		slog.String("salesforce_api_version", s.APIVersion),
		slog.String("events", c.Events),
		slog.String("cdc_channel", c.CDCChannel),
		slog.String("mapping_file", c.MappingFile),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("state_dir", c.StateDir),
		slog.Any("admin_token", c.AdminToken),
		slog.Any("agent_token_key", c.AgentTokenKey),
		slog.Any("agent_origins", c.AgentOrigins),
		slog.Int("agent_send_buffer", c.AgentSendBuffer),
		slog.String("log_level", c.LogLevel),
		slog.String("log_format", c.LogFormat),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout.Duration),
		slog.Duration("waiting_check", c.WaitingCheck.Duration),
		slog.Int("writer_in_flight", c.WriterInFlight),
		slog.Bool("leader_election", c.Leader.Election),
		slog.String("leader_lease", c.Leader.Lease),
		slog.Duration("leader_lease_duration", c.Leader.LeaseDuration.Duration),
		slog.Duration("leader_renew_deadline", c.Leader.RenewDeadline.Duration),
		slog.Duration("leader_retry_period", c.Leader.RetryPeriod.Duration),
		slog.String("pod_name", c.PodName),
		slog.String("pod_namespace", c.PodNamespace),
	)
}

// Secret is a configuration value that must never be shown: String, GoString, every fmt verb,
// slog and JSON print "<secret>" when it is set and "" when it is not. Reveal returns the
// value for the one place that sends it.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v: v} }

const redacted = "<secret>"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return s.v }

// Decode implements envconfig.Decoder.
func (s *Secret) Decode(v string) error {
	s.v = v
	return nil
}

func (s Secret) shown() string {
	if s.v == "" {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.shown() }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return strconv.Quote(s.shown()) }

// Format implements fmt.Formatter, so no verb (%d, %x, %+v...) prints the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		_, _ = io.WriteString(f, strconv.Quote(s.shown()))
		return
	}
	_, _ = io.WriteString(f, s.shown())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.shown()) }

// Duration is a time.Duration read from the environment. A value that does not parse is kept
// aside, so that Validate reports it together with every other problem.
type Duration struct {
	time.Duration
	invalid string
}

// Decode implements envconfig.Decoder; it never fails (see Validate).
func (d *Duration) Decode(v string) error {
	p, err := time.ParseDuration(v)
	if err != nil {
		d.Duration, d.invalid = 0, v
		return nil //nolint:nilerr // reported by Validate with the other problems
	}
	d.Duration, d.invalid = p, ""
	return nil
}

// MarshalText implements encoding.TextMarshaler: the duration as time.Duration prints it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
