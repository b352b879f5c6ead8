package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omniroute/omniroute/mapping"
	"github.com/omniroute/omniroute/salesforce"
)

// The environment variables `omniroute mapping check` and `mapping fetch` read to reach the org
// (docs/mapping.md). With OMNIROUTE_SALESFORCE_CLIENT_ID unset, check validates offline only.
const (
	envLoginURL       = "OMNIROUTE_SALESFORCE_LOGIN_URL"
	envClientID       = "OMNIROUTE_SALESFORCE_CLIENT_ID"
	envClientSecret   = "OMNIROUTE_SALESFORCE_CLIENT_SECRET"
	envUsername       = "OMNIROUTE_SALESFORCE_USERNAME"
	envPassword       = "OMNIROUTE_SALESFORCE_PASSWORD"
	envPrivateKeyFile = "OMNIROUTE_SALESFORCE_PRIVATE_KEY_FILE"
	envAPIVersion     = "OMNIROUTE_SALESFORCE_API_VERSION"
)

// orgReader reads the org metadata a mapping refers to.
type orgReader interface {
	ReadOrg(ctx context.Context) (mapping.Org, error)
}

// newOrgReader builds the org reader from the environment; ok is false when no credentials are
// set. Tests replace it.
var newOrgReader = orgReaderFromEnv

const mappingUsage = `usage:
  omniroute mapping check FILE   validate FILE; with OMNIROUTE_SALESFORCE_* set, also against the org
  omniroute mapping fetch [-o FILE]
                                 write a commented mapping skeleton from the org (default stdout)

environment (to reach the org; without OMNIROUTE_SALESFORCE_CLIENT_ID, check is offline):
  OMNIROUTE_SALESFORCE_LOGIN_URL         login host (default https://login.salesforce.com)
  OMNIROUTE_SALESFORCE_CLIENT_ID         connected app consumer key
  OMNIROUTE_SALESFORCE_CLIENT_SECRET     consumer secret
  OMNIROUTE_SALESFORCE_USERNAME          user for the password or JWT bearer flow
  OMNIROUTE_SALESFORCE_PASSWORD          password (+ security token): password flow
  OMNIROUTE_SALESFORCE_PRIVATE_KEY_FILE  PEM RSA key: JWT bearer flow
  OMNIROUTE_SALESFORCE_API_VERSION       REST API version (default 63.0)
  With only a client id and secret, the client credentials flow is used.
`

// mappingCommand runs `omniroute mapping check|fetch`. Exit codes: 0 ok, 1 problems found or a
// runtime error, 2 usage.
func mappingCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		_, _ = io.WriteString(stderr, mappingUsage)
		return exitConfig
	}
	switch args[0] {
	case "check":
		return mappingCheck(ctx, args[1:], stdout, stderr)
	case "fetch":
		return mappingFetch(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		_, _ = io.WriteString(stdout, mappingUsage)
		return exitOK
	default:
		_, _ = fmt.Fprintf(stderr, "omniroute mapping: unknown command %q\n\n%s", args[0], mappingUsage)
		return exitConfig
	}
}

func mappingCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mapping check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	offline := fs.Bool("offline", false, "do not check against the org even when credentials are set")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() != 1 {
		_, _ = io.WriteString(stderr, mappingUsage)
		return exitConfig
	}
	path := fs.Arg(0)
	data, err := os.ReadFile(path)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute mapping check: %v\n", err)
		return exitError
	}
	cfg, err := mapping.Parse(data, path)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return exitError
	}
	problems := cfg.Warnings()
	failed := len(problems) > 0
	org := "offline"
	if !*offline {
		reader, ok, err := newOrgReader()
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "omniroute mapping check: %v\n", err)
			return exitConfig
		}
		if ok {
			o, err := reader.ReadOrg(ctx)
			if err != nil {
				_, _ = fmt.Fprintf(stderr, "omniroute mapping check: %v\n", err)
				return exitError
			}
			warnings, err := mapping.ValidateOrg(cfg, o)
			problems = append(problems, warnings...)
			var ps mapping.Problems
			if errors.As(err, &ps) {
				problems = append(problems, ps...)
			}
			failed = failed || len(problems) > 0
			org = "against the org"
		}
	}
	slices.SortStableFunc(problems, func(a, b mapping.Problem) int {
		return cmpPos(a.Pos, b.Pos)
	})
	for _, p := range problems {
		_, _ = fmt.Fprintln(stderr, p.String())
	}
	if failed {
		_, _ = fmt.Fprintf(stderr, "%s: %d problem(s) (checked %s)\n", path, len(problems), org)
		return exitError
	}
	_, _ = fmt.Fprintf(stdout, "%s: ok (checked %s)\n", path, org)
	return exitOK
}

func cmpPos(a, b mapping.Position) int {
	if a.Line != b.Line {
		return a.Line - b.Line
	}
	return a.Column - b.Column
}

func mappingFetch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mapping fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the skeleton to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() != 0 {
		_, _ = io.WriteString(stderr, mappingUsage)
		return exitConfig
	}
	reader, ok, err := newOrgReader()
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute mapping fetch: %v\n", err)
		return exitConfig
	}
	if !ok {
		_, _ = fmt.Fprintf(stderr, "omniroute mapping fetch: set %s and the other OMNIROUTE_SALESFORCE_* variables\n", envClientID)
		return exitConfig
	}
	org, err := reader.ReadOrg(ctx)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute mapping fetch: %v\n", err)
		return exitError
	}
	skel := writeSkeleton(org)
	if *out == "" {
		_, err = stdout.Write(skel)
	} else {
		err = os.WriteFile(*out, skel, 0o644)
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute mapping fetch: %v\n", err)
		return exitError
	}
	return exitOK
}

var plainYAML = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.@-]*$`)

// yamlString writes s as a YAML scalar: bare when it is a plain name, else double-quoted.
func yamlString(s string) string {
	if plainYAML.MatchString(s) && s != "TODO" && !slices.Contains([]string{"true", "false", "null", "yes", "no", "on", "off"}, strings.ToLower(s)) {
		return s
	}
	return strconv.Quote(s)
}

// classFor guesses a channel's interaction class from the object it routes.
func classFor(relatedEntity string) (mapping.Class, bool) {
	switch relatedEntity {
	case "VoiceCall", "Video":
		return mapping.Live, true
	case "LiveChatTranscript", "MessagingSession":
		return mapping.SemiLive, true
	case "Case", "EmailMessage", "Lead", "WorkOrder":
		return mapping.NonLive, true
	}
	return 0, false
}

// writeSkeleton writes a commented mapping with every external-routing queue, service channel,
// presence status and skill of the org. Values the admin must choose are TODO, which
// `mapping check` rejects until they are replaced.
func writeSkeleton(org mapping.Org) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { _, _ = fmt.Fprintf(&b, format, args...) }
	byName := func(a, b string) int { return strings.Compare(a, b) }

	var skills []string
	for _, s := range org.Skills {
		skills = append(skills, s.DeveloperName)
	}
	slices.SortFunc(skills, byName)
	var statuses []string
	for _, s := range org.Statuses {
		statuses = append(statuses, s.DeveloperName)
	}
	slices.SortFunc(statuses, byName)

	w("# omniroute mapping skeleton, written by `omniroute mapping fetch`.\n")
	w("# Replace every TODO (see the comment beside it), then run `omniroute mapping check FILE`.\n")
	w("# docs/mapping.md describes every key.\n\n")

	queues := slices.Clone(org.Queues)
	slices.SortFunc(queues, func(a, b mapping.OrgQueue) int { return byName(a.DeveloperName, b.DeveloperName) })
	w("# One plan per external-routing queue; put queues that route alike into one plan.\n")
	if len(skills) > 0 {
		w("# Skills in the org: %s.\n", strings.Join(skills, ", "))
	}
	w("plans:\n")
	var other []string
	n := 0
	for _, q := range queues {
		if q.RoutingModel != mapping.RoutingModelExternal {
			other = append(other, q.DeveloperName)
			continue
		}
		n++
		w("  - name: %s\n", yamlString(planName(q.DeveloperName)))
		w("    queues: [%s]  # Id %s\n", yamlString(q.DeveloperName), q.ID)
		w("    requiredSkills: []  # e.g. [{skill: %s, minLevel: 1}]\n", firstOr(skills, "English"))
		w("    priority: 0  # lower routes first\n")
		w("    offerTimeout: 30s\n")
		w("    wrapUpTimeout: 0s\n")
	}
	if n == 0 {
		w("  - name: TODO  # no queue in the org uses External Routing; give a queue such a routing configuration\n")
		w("    queues: [TODO]\n")
	}
	if len(other) > 0 {
		w("# Queues not on External Routing (omniroute does not route them): %s.\n", strings.Join(other, ", "))
	}

	channels := slices.Clone(org.Channels)
	slices.SortFunc(channels, func(a, b mapping.OrgChannel) int { return byName(a.DeveloperName, b.DeveloperName) })
	w("\nchannels:\n")
	for _, c := range channels {
		w("  - name: %s  # routes %s\n", yamlString(c.DeveloperName), c.RelatedEntity)
		if cl, ok := classFor(c.RelatedEntity); ok {
			w("    class: %s  # guessed from %s\n", cl, c.RelatedEntity)
		} else {
			w("    class: TODO  # live, semi-live or non-live\n")
		}
		w("    weight: 1  # capacity units per work item\n")
	}
	if len(channels) == 0 {
		w("  []  # no service channels in the org\n")
	}

	w("\ncapacity:\n")
	w("  default: standard\n")
	w("  profiles:\n")
	w("    - name: standard\n")
	w("      total: TODO  # capacity units an agent has, e.g. 10\n")

	w("\npresence:\n")
	w("  # Presence statuses in the org: %s.\n", strings.Join(statuses, ", "))
	w("  # Agent states: Ready, ReadyOutbound, Busy, WrapUp, Away, ExtendedAway, LoggedOut,\n")
	w("  # optionally with a minor state such as Away/Break.\n")
	w("  fromSalesforce:  # status -> agent state; delete a line to map that status to Ready\n")
	for _, s := range statuses {
		w("    %s: TODO\n", yamlString(s))
	}
	if len(statuses) == 0 {
		w("    {}\n")
	}
	w("  toSalesforce:  # agent state -> status; every major state is required\n")
	for _, m := range mapping.MajorStates() {
		if m == mapping.LoggedOut {
			w("    %s: %s\n", m, mapping.OfflineStatus)
			continue
		}
		w("    %s: TODO\n", m)
	}
	w("  revertToLastStatus: false\n")
	w("  postCallState: Ready\n")
	return b.Bytes()
}

func firstOr(xs []string, def string) string {
	if len(xs) > 0 {
		return xs[0]
	}
	return def
}

// planName turns a queue DeveloperName into a plan name: Support_EN -> support-en.
func planName(queue string) string {
	return strings.ToLower(strings.ReplaceAll(queue, "_", "-"))
}

// orgReaderFromEnv builds a Salesforce-backed org reader from OMNIROUTE_SALESFORCE_*.
func orgReaderFromEnv() (orgReader, bool, error) {
	id := os.Getenv(envClientID)
	if id == "" {
		return nil, false, nil
	}
	opts := salesforce.TokenOptions{
		LoginURL:     os.Getenv(envLoginURL),
		ClientID:     id,
		ClientSecret: os.Getenv(envClientSecret),
		Username:     os.Getenv(envUsername),
		Password:     os.Getenv(envPassword),
		HTTPClient:   &http.Client{Timeout: 60 * time.Second},
	}
	switch {
	case os.Getenv(envPrivateKeyFile) != "":
		key, err := os.ReadFile(os.Getenv(envPrivateKeyFile))
		if err != nil {
			return nil, false, fmt.Errorf("read %s: %w", envPrivateKeyFile, err)
		}
		opts.Grant, opts.PrivateKey = salesforce.GrantJWTBearer, key
	case opts.Username != "":
		opts.Grant = salesforce.GrantPassword
	default:
		opts.Grant = salesforce.GrantClientCredentials
	}
	ts, err := salesforce.NewTokenSource(opts)
	if err != nil {
		return nil, false, fmt.Errorf("configure salesforce login: %w", err)
	}
	c, err := salesforce.New(salesforce.Options{Tokens: ts, HTTPClient: opts.HTTPClient, APIVersion: os.Getenv(envAPIVersion)})
	if err != nil {
		return nil, false, fmt.Errorf("configure salesforce client: %w", err)
	}
	return sfOrgReader{c: c}, true, nil
}

// sfOrgReader reads org metadata with SOQL.
type sfOrgReader struct{ c *salesforce.Client }

// ReadOrg reads queues with their routing models, service channels, presence statuses and skills.
func (r sfOrgReader) ReadOrg(ctx context.Context) (mapping.Org, error) {
	var org mapping.Org
	models := map[string]string{}
	for rc, err := range salesforce.QueryAs[salesforce.QueueRoutingConfig](ctx, r.c, "SELECT Id, DeveloperName, RoutingModel FROM QueueRoutingConfig") {
		if err != nil {
			return org, fmt.Errorf("read routing configurations: %w", err)
		}
		models[rc.ID] = rc.RoutingModel
	}
	for q, err := range salesforce.QueryAs[salesforce.Queue](ctx, r.c, "SELECT Id, DeveloperName, QueueRoutingConfigId FROM Group WHERE Type = 'Queue'") {
		if err != nil {
			return org, fmt.Errorf("read queues: %w", err)
		}
		org.Queues = append(org.Queues, mapping.OrgQueue{ID: q.ID, DeveloperName: q.DeveloperName, RoutingModel: models[q.QueueRoutingConfigID]})
	}
	for c, err := range salesforce.QueryAs[salesforce.ServiceChannel](ctx, r.c, "SELECT Id, DeveloperName, RelatedEntity FROM ServiceChannel") {
		if err != nil {
			return org, fmt.Errorf("read service channels: %w", err)
		}
		org.Channels = append(org.Channels, mapping.OrgChannel{ID: c.ID, DeveloperName: c.DeveloperName, RelatedEntity: c.RelatedEntity})
	}
	for s, err := range salesforce.QueryAs[salesforce.ServicePresenceStatus](ctx, r.c, "SELECT Id, DeveloperName, MasterLabel FROM ServicePresenceStatus") {
		if err != nil {
			return org, fmt.Errorf("read presence statuses: %w", err)
		}
		org.Statuses = append(org.Statuses, mapping.OrgStatus{ID: s.ID, DeveloperName: s.DeveloperName, Label: s.MasterLabel})
	}
	for s, err := range salesforce.QueryAs[salesforce.Skill](ctx, r.c, "SELECT Id, DeveloperName FROM Skill") {
		if err != nil {
			return org, fmt.Errorf("read skills: %w", err)
		}
		org.Skills = append(org.Skills, mapping.OrgSkill{ID: s.ID, DeveloperName: s.DeveloperName})
	}
	return org, nil
}
