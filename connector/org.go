package connector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/salesforce"
)

// Salesforce is the daemon's connection to the org, built from SalesforceConfig: one token
// source and one REST client over one HTTP client. The stream (later) shares both.
type Salesforce struct {
	Tokens *salesforce.TokenSource
	Client *salesforce.Client
	// Mode is the OAuth flow in use (AuthJWT, AuthClientCredentials, AuthPassword).
	Mode string
}

// SalesforceOptions are NewSalesforce's dependencies.
type SalesforceOptions struct {
	// HTTPClient carries every request. Default: DefaultHTTPClient.
	HTTPClient *http.Client
	// Registerer receives the salesforce package's metrics, already under the daemon's
	// omniroute_ prefix. Nil registers nothing.
	Registerer prometheus.Registerer
	// Logger is the parent logger. Nil discards.
	Logger *slog.Logger
}

// NewSalesforce builds the token source and the REST client. It reads the private key file of
// the JWT flow and makes no request. Call it on a validated configuration.
func NewSalesforce(cfg SalesforceConfig, opts SalesforceOptions) (*Salesforce, error) {
	mode, err := cfg.AuthMode()
	if err != nil {
		return nil, err
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = DefaultHTTPClient()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	logger := opts.Logger // the salesforce package names its own components
	topts := salesforce.TokenOptions{
		Grant:        grant(mode),
		LoginURL:     cfg.LoginURL,
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret.Reveal(),
		Username:     cfg.Username,
		Password:     cfg.Password.Reveal(),
		HTTPClient:   opts.HTTPClient,
		Registerer:   opts.Registerer,
		Logger:       logger,
	}
	if mode == AuthJWT {
		key, err := os.ReadFile(cfg.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: read the private key: %w", env("Salesforce", "PrivateKeyFile"), err)
		}
		topts.PrivateKey = key
	}
	ts, err := salesforce.NewTokenSource(topts)
	if err != nil {
		return nil, fmt.Errorf("configure the salesforce login: %w", err)
	}
	c, err := salesforce.New(salesforce.Options{
		Tokens:            ts,
		HTTPClient:        opts.HTTPClient,
		APIVersion:        cfg.APIVersion,
		CallOptionsClient: CallOptionsClient,
		Registerer:        opts.Registerer,
		Logger:            logger,
	})
	if err != nil {
		return nil, fmt.Errorf("configure the salesforce client: %w", err)
	}
	return &Salesforce{Tokens: ts, Client: c, Mode: mode}, nil
}

// CallOptionsClient is sent as Sforce-Call-Options: client=omniroute on every write, so the
// change events omniroute causes carry it in changeOrigin and are recognised as its own.
const CallOptionsClient = "omniroute"

// Authenticate gets an access token: the start-up's proof that the credentials work.
func (s *Salesforce) Authenticate(ctx context.Context) (salesforce.Token, error) {
	tok, err := s.Tokens.Token(ctx)
	if err != nil {
		return tok, fmt.Errorf("log in to salesforce (%s flow): %w", s.Mode, err)
	}
	return tok, nil
}

// ReadOrg reads the org metadata a mapping refers to: queues with their routing
// configurations' models, service channels, presence statuses and skills.
func (s *Salesforce) ReadOrg(ctx context.Context) (mapping.Org, error) {
	return ReadOrg(ctx, s.Client)
}

// ReadOrg reads the org metadata a mapping refers to with SOQL.
func ReadOrg(ctx context.Context, c *salesforce.Client) (mapping.Org, error) {
	var org mapping.Org
	models := map[string]string{}
	for rc, err := range salesforce.QueryAs[salesforce.QueueRoutingConfig](ctx, c, "SELECT Id, DeveloperName, RoutingModel FROM QueueRoutingConfig") {
		if err != nil {
			return org, fmt.Errorf("read routing configurations: %w", err)
		}
		models[rc.ID] = rc.RoutingModel
	}
	for q, err := range salesforce.QueryAs[salesforce.Queue](ctx, c, "SELECT Id, DeveloperName, QueueRoutingConfigId FROM Group WHERE Type = 'Queue'") {
		if err != nil {
			return org, fmt.Errorf("read queues: %w", err)
		}
		org.Queues = append(org.Queues, mapping.OrgQueue{ID: q.ID, DeveloperName: q.DeveloperName, RoutingModel: models[q.QueueRoutingConfigID]})
	}
	for ch, err := range salesforce.QueryAs[salesforce.ServiceChannel](ctx, c, "SELECT Id, DeveloperName, RelatedEntity FROM ServiceChannel") {
		if err != nil {
			return org, fmt.Errorf("read service channels: %w", err)
		}
		org.Channels = append(org.Channels, mapping.OrgChannel{ID: ch.ID, DeveloperName: ch.DeveloperName, RelatedEntity: ch.RelatedEntity})
	}
	for st, err := range salesforce.QueryAs[salesforce.ServicePresenceStatus](ctx, c, "SELECT Id, DeveloperName, MasterLabel FROM ServicePresenceStatus") {
		if err != nil {
			return org, fmt.Errorf("read presence statuses: %w", err)
		}
		org.Statuses = append(org.Statuses, mapping.OrgStatus{ID: st.ID, DeveloperName: st.DeveloperName, Label: st.MasterLabel})
	}
	for sk, err := range salesforce.QueryAs[salesforce.Skill](ctx, c, "SELECT Id, DeveloperName FROM Skill") {
		if err != nil {
			return org, fmt.Errorf("read skills: %w", err)
		}
		org.Skills = append(org.Skills, mapping.OrgSkill{ID: sk.ID, DeveloperName: sk.DeveloperName})
	}
	return org, nil
}

// CheckOrg checks a loaded mapping against org metadata. It returns every problem, warnings
// included (the mapping's own and the org check's), sorted by position, and whether any of
// them is an error: a queue, channel, status or skill the org does not have.
func CheckOrg(cfg *mapping.Config, org mapping.Org) (problems []mapping.Problem, hasErrors bool) {
	problems = cfg.Warnings()
	warnings, err := mapping.ValidateOrg(cfg, org)
	problems = append(problems, warnings...)
	var ps mapping.Problems
	switch {
	case errors.As(err, &ps):
		problems = append(problems, ps...)
		hasErrors = len(ps) > 0
	case err != nil:
		problems = append(problems, mapping.Problem{Message: err.Error()})
		hasErrors = true
	}
	slices.SortStableFunc(problems, func(a, b mapping.Problem) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return problems, hasErrors
}

// idleConnsPerHost is how many idle connections DefaultHTTPClient keeps per host: one for each
// call the daemon may have in flight at once to the org (up to MaxMaxInFlight inserts, up to
// 32 userinfo checks, the stream's long poll and handshakes, look-ups, the waiting check,
// presence reads and writes). net/http's default of 2 closed the others after nearly every
// overlapping call (27 new connections in a minute at 100 offers a second with two insert
// slots), and against Salesforce each new one is a TCP and TLS handshake on a call's path.
const idleConnsPerHost = 64

// DefaultHTTPClient returns a new client of the kind the daemon uses for Salesforce when none is
// given: a 60 s limit per call, and a transport of its own (net/http's default one's settings)
// that keeps idleConnsPerHost idle connections per host.
func DefaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = idleConnsPerHost
	t.MaxIdleConns = max(t.MaxIdleConns, idleConnsPerHost)
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}
