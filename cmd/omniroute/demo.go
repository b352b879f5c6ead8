package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omniroute/omniroute/connector"
	"github.com/omniroute/omniroute/salesforce/emulator"
)

// The work the demo creates, in turn: chats, messaging sessions and cases across the three
// queues of the demo org, in proportion to the agents who can take it (every agent speaks
// English, a third German, a quarter Billing): two thirds Support_EN, a sixth each Support_DE
// and Billing.
var (
	demoChannels = []string{"Chat", "Messaging", "Case"}
	demoQueues   = []string{"Support_EN", "Billing", "Support_EN", "Support_DE", "Support_EN", "Support_EN"}
)

// demoChannel and demoQueue are the channel and the queue of the demo's i-th work item: every
// combination comes up in 18 items.
func demoChannel(i int) string { return demoChannels[i%len(demoChannels)] }
func demoQueue(i int) string   { return demoQueues[(i/len(demoChannels))%len(demoQueues)] }

// demoOptions are the demo's flags.
type demoOptions struct {
	orgAddr, httpAddr, mapping, logLevel string
	rate                                 float64
	agents, silent                       int
	acceptAfter, closeAfter, every, stop time.Duration
	declineRate                          float64
}

// demoCommand runs the whole product on loopback: the emulator's demo org served over real
// HTTP, simulated agents that log in, accept after a delay, sometimes decline, sometimes let
// the push timeout fire and close their work after a while; the daemon (connector.New and Run,
// with the demo mapping) routing it; a generator creating chats, messaging sessions and cases
// across the three queues at --rate; and one progress line every --every. ctx (Ctrl-C) stops
// it all and it returns exitOK.
func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o demoOptions
	fs := flag.NewFlagSet("omniroute demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.orgAddr, "addr", "127.0.0.1:0", "loopback address of the demo org (port 0 picks a free one)")
	fs.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:0", "address of the daemon's /metrics, /readyz and admin API (port 0 picks a free one)")
	fs.StringVar(&o.mapping, "mapping", "docs/examples/demo-mapping.yaml", "the mapping file")
	rate := fs.String("rate", "2/s", "how much work to create: N/s, N/m or N (per second)")
	fs.IntVar(&o.agents, "agents", 24, "how many of the demo org's 24 agents log in (status Available)")
	fs.IntVar(&o.silent, "silent", 2, "how many of the logged-in agents never answer, so their offers end on the push timeout")
	fs.DurationVar(&o.acceptAfter, "accept-after", 3*time.Second, "simulated agents answer an offer after this long")
	fs.Float64Var(&o.declineRate, "decline-rate", 0.1, "share of offers the simulated agents decline (0..1)")
	fs.DurationVar(&o.closeAfter, "close-after", 15*time.Second, "simulated agents close accepted work after this long")
	fs.DurationVar(&o.every, "every", 5*time.Second, "how often to print a progress line")
	fs.DurationVar(&o.stop, "duration", 0, "stop after this long (0: run until Ctrl-C)")
	fs.StringVar(&o.logLevel, "log-level", "warn", "the daemon's and the org's log level on stderr: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	var problems []error
	var err error
	if o.rate, err = parseRate(*rate); err != nil {
		problems = append(problems, fmt.Errorf("--rate: %w", err))
	}
	if o.agents < 1 || o.agents > 24 {
		problems = append(problems, fmt.Errorf("--agents: %d is not between 1 and 24", o.agents))
	}
	if o.silent < 0 || o.silent >= o.agents {
		problems = append(problems, fmt.Errorf("--silent: %d must be at least 0 and below --agents (%d)", o.silent, o.agents))
	}
	if o.declineRate < 0 || o.declineRate > 1 {
		problems = append(problems, fmt.Errorf("--decline-rate: %g is not between 0 and 1", o.declineRate))
	}
	if o.every <= 0 || o.acceptAfter < 0 || o.closeAfter < 0 || o.stop < 0 {
		problems = append(problems, errors.New("--every must be positive; --accept-after, --close-after and --duration not negative"))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		problems = append(problems, fmt.Errorf("--log-level: %w", err))
	}
	if err := errors.Join(problems...); err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute demo:\n%v\n", err)
		return exitConfig
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := runDemo(ctx, o, logger, stdout); err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute demo: %v\n", err)
		if errors.Is(err, iofs.ErrNotExist) {
			_, _ = fmt.Fprintln(stderr, "(run the demo from the repository root, or give the mapping with --mapping)")
		}
		var cerr *connector.ConfigError
		if errors.As(err, &cerr) {
			return exitConfig
		}
		return exitError
	}
	return exitOK
}

// parseRate reads "2/s", "30/m" or "2" (per second).
func parseRate(s string) (float64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	per := time.Second
	switch unit {
	case "", "s":
	case "m", "min":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		return 0, fmt.Errorf("%q: the unit after / must be s, m or h", s)
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) {
		return 0, fmt.Errorf("%q is not a positive rate such as 2/s", s)
	}
	return n / per.Seconds(), nil
}

func runDemo(ctx context.Context, o demoOptions, logger *slog.Logger, stdout io.Writer) error {
	if o.stop > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.stop)
		defer cancel()
	}
	org := emulator.DemoSeed()
	var agents []string
	for _, u := range org.Users {
		if u.Agent && len(agents) < o.agents {
			agents = append(agents, u.Username)
		}
	}
	em, err := emulator.New(emulator.Options{
		Seed:   org,
		Logger: logger.With("component", "demo-org"),
		// The first agents answer; the last --silent ones are online but never answer, so their
		// offers end on the push timeout (30 s in the demo org) and are routed again.
		Auto: emulator.AutoOptions{Enabled: true, AcceptAfter: o.acceptAfter, DeclineRate: o.declineRate,
			CloseAfter: o.closeAfter, Users: agents[:len(agents)-o.silent]},
	})
	if err != nil {
		return err
	}
	defer em.Close()
	for _, a := range agents {
		if err := em.SetPresence(a, "Available"); err != nil {
			return fmt.Errorf("log %s in: %w", a, err)
		}
	}

	orgLn, err := (&net.ListenConfig{}).Listen(ctx, "tcp", o.orgAddr)
	if err != nil {
		return fmt.Errorf("--addr: listen on %s: %w", o.orgAddr, err)
	}
	orgURL := "http://" + orgLn.Addr().String()
	orgSrv := &http.Server{Handler: em, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	orgDone := make(chan error, 1)
	go func() { orgDone <- orgSrv.Serve(orgLn) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = orgSrv.Shutdown(sctx)
		if err := <-orgDone; !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("demo org server", "err", err)
		}
	}()

	token := make([]byte, 24)
	_, _ = rand.Read(token)
	admin := hex.EncodeToString(token)
	cfg := connector.DefaultConfig()
	cfg.Salesforce.LoginURL = orgURL
	cfg.Salesforce.ClientID = emulator.DemoClientID
	cfg.Salesforce.ClientSecret = connector.NewSecret(emulator.DemoClientSecret)
	cfg.MappingFile = o.mapping
	cfg.AdminToken = connector.NewSecret(admin)
	agentKey := make([]byte, 32)
	_, _ = rand.Read(agentKey)
	cfg.AgentTokenKey = connector.NewSecret(hex.EncodeToString(agentKey))
	cfg.HTTPAddr = o.httpAddr
	cfg.ShutdownTimeout.Duration = 5 * time.Second
	// The daemon's own client, so its idle connections are closed when the demo ends.
	client := connector.DefaultHTTPClient()
	defer client.CloseIdleConnections()
	d, err := connector.New(connector.Options{
		Config: cfg, Logger: logger.With("component", "omniroute"), Registry: prometheus.NewRegistry(),
		HTTPClient: client, Version: version,
	})
	if err != nil {
		return err
	}
	daemonURL := "http://" + d.Addr().String()
	pad, err := agentLink(ctx, client.Transport, orgURL, em, agents[0], cfg.AgentTokenKey, daemonURL)
	if err != nil {
		return err
	}
	dctx, stopDaemon := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDaemon()
	daemonDone := make(chan error, 1)
	go func() { daemonDone <- d.Run(dctx) }()

	_, _ = fmt.Fprintf(stdout, `omniroute demo: the demo org on %[1]s, omniroute on %[2]s
  agents     %[3]d online; %[4]d answer after %[5]s (declining %.0[6]f%%) and close after %[7]s, %[8]d never answer (push timeout)
  work       %[9]s chats, messaging sessions and cases across Support_EN, Billing and Support_DE
  metrics    curl -s %[2]s/metrics | grep ^omniroute_
  explain    curl -s -H 'Authorization: Bearer %[10]s' %[2]s/v1/work/<work item id>/explain
  org        control token %[11]s (docs/emulator.md); Ctrl-C stops
  agent pad  %[12]s
`, orgURL, daemonURL, len(agents), len(agents)-o.silent, o.acceptAfter, o.declineRate*100, o.closeAfter,
		o.silent, formatRate(o.rate), admin, em.ControlToken(), pad)

	var result error
	stats := &demoStats{created: map[string]time.Time{}}
	if err := waitReady(ctx, client.Transport, daemonURL, daemonDone); err != nil {
		result = err
	} else if ctx.Err() == nil {
		_, _ = fmt.Fprintf(stdout, "omniroute is ready (%s/readyz); routing\n", daemonURL)
		base := em.Counters().APICalls
		start := time.Now()
		gctx, stopGen := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { generate(gctx, em, o.rate, stats, logger) })
		tick := time.NewTicker(o.every)
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case err := <-daemonDone:
				daemonDone <- err
				result = fmt.Errorf("omniroute stopped: %w", err)
				break loop
			case now := <-tick.C:
				_, _ = fmt.Fprintln(stdout, stats.report(now.Sub(start), em.AgentWorks(), em.Counters().APICalls-base))
			}
		}
		tick.Stop()
		stopGen()
		wg.Wait()
	}
	stopDaemon()
	if err := <-daemonDone; err != nil && result == nil {
		result = fmt.Errorf("omniroute: %w", err)
	}
	if result == nil {
		_, _ = fmt.Fprintln(stdout, "omniroute demo stopped")
	}
	return result
}

// agentDoc is the agent protocol's page: the demo's agent link opens it until the agent pad
// exists.
const agentDoc = "docs/agent-protocol.md"

// agentLink is a link that opens as the demo agent username: the protocol page (a file of the
// checkout, or the repository's copy) with the agent's User Id, a demo token and the websocket
// in its fragment, which no browser sends to a server.
func agentLink(ctx context.Context, rt http.RoundTripper, orgURL string, em *emulator.Emulator, username string,
	key connector.Secret, daemonURL string,
) (string, error) {
	sfToken, err := em.IssueToken(username)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, orgURL+"/services/oauth2/userinfo", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+sfToken)
	resp, err := (&http.Client{Transport: rt, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("look the demo agent up: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var info struct {
		UserID string `json:"user_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || info.UserID == "" {
		return "", fmt.Errorf("look the demo agent up: %s answered no user id", orgURL)
	}
	token, err := connector.MintAgentToken(key, info.UserID, 8*time.Hour, time.Now())
	if err != nil {
		return "", err
	}
	page := "https://github.com/omniroute/omniroute/blob/main/" + agentDoc
	if abs, err := filepath.Abs(agentDoc); err == nil {
		if _, err := os.Stat(abs); err == nil {
			page = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
		}
	}
	frag := url.Values{"agent": {info.UserID}, "token": {token}, "ws": {"ws" + strings.TrimPrefix(daemonURL, "http") + connector.AgentPath}}
	return page + "#" + frag.Encode(), nil
}

// formatRate renders items per second as the --rate flag reads it.
func formatRate(perSecond float64) string {
	if perSecond >= 1 {
		return strconv.FormatFloat(perSecond, 'g', 4, 64) + "/s"
	}
	return strconv.FormatFloat(perSecond*60, 'g', 4, 64) + "/m"
}

// waitReady polls the daemon's /readyz until it answers 200.
func waitReady(ctx context.Context, rt http.RoundTripper, url string, daemonDone chan error) error {
	client := &http.Client{Transport: rt, Timeout: 5 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil // Ctrl-C while starting: a clean stop
		case err := <-daemonDone:
			daemonDone <- err
			return fmt.Errorf("omniroute stopped before it was ready: %w", err)
		case <-tick.C:
		}
	}
}

// generate creates work at rate items per second until ctx ends: chats, messaging sessions
// and cases in turn, across the three queues.
func generate(ctx context.Context, em *emulator.Emulator, rate float64, stats *demoStats, logger *slog.Logger) {
	step := min(time.Duration(float64(time.Second)/rate), 100*time.Millisecond)
	tick := time.NewTicker(step)
	defer tick.Stop()
	start := time.Now()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for due := int(now.Sub(start).Seconds() * rate); sent < due && ctx.Err() == nil; sent++ {
				req := emulator.WorkRequest{
					Channel: demoChannel(sent),
					Queue:   demoQueue(sent),
					Subject: fmt.Sprintf("demo %d", sent+1),
				}
				w, err := em.CreateWork(req)
				if err != nil {
					logger.Warn("create work", "channel", req.Channel, "queue", req.Queue, "err", err)
					continue
				}
				stats.add(w.WorkItemID, time.Now())
			}
		}
	}
}

// demoStats follows the work the demo created.
type demoStats struct {
	mu      sync.Mutex
	created map[string]time.Time // work item id → when it was created
}

func (s *demoStats) add(id string, at time.Time) {
	s.mu.Lock()
	s.created[id] = at
	s.mu.Unlock()
}

// demoFigures are one progress line's numbers.
type demoFigures struct {
	created, routed, waiting int
	p95                      time.Duration
	declined, timedOut       int // work re-routed after a decline, after a push timeout
	apiPerRouted             float64
}

// figures reads the org's AgentWork: a work item is routed once an AgentWork of it was
// accepted; its wait runs from its creation to that accept. A decline or a push timeout is
// re-routed when the work item got another AgentWork afterwards.
func (s *demoStats) figures(aws []emulator.AgentWorkInfo, apiCalls int64) demoFigures {
	s.mu.Lock()
	defer s.mu.Unlock()
	type item struct {
		accepted          time.Time
		awCount           int
		declines, timeout int
	}
	items := map[string]*item{}
	for _, aw := range aws { // oldest first
		it := items[aw.WorkItemID]
		if it == nil {
			it = &item{}
			items[aw.WorkItemID] = it
		}
		it.awCount++
		for _, h := range aw.History {
			switch h.Status {
			case emulator.StatusOpened:
				if it.accepted.IsZero() {
					it.accepted = h.At
				}
			case emulator.StatusDeclined:
				it.declines = it.awCount
			case emulator.StatusDeclinedOnPushTimeout:
				it.timeout = it.awCount
			}
		}
	}
	f := demoFigures{created: len(s.created)}
	var waits []time.Duration
	for id, at := range s.created {
		it := items[id]
		if it == nil || it.accepted.IsZero() {
			f.waiting++
		} else {
			f.routed++
			waits = append(waits, it.accepted.Sub(at))
		}
		if it != nil && it.declines > 0 && it.awCount > it.declines {
			f.declined++
		}
		if it != nil && it.timeout > 0 && it.awCount > it.timeout {
			f.timedOut++
		}
	}
	if len(waits) > 0 {
		slices.Sort(waits)
		f.p95 = waits[(len(waits)*95+99)/100-1]
	}
	if f.routed > 0 {
		f.apiPerRouted = float64(apiCalls) / float64(f.routed)
	}
	return f
}

// report is one progress line.
func (s *demoStats) report(elapsed time.Duration, aws []emulator.AgentWorkInfo, apiCalls int64) string {
	f := s.figures(aws, apiCalls)
	return fmt.Sprintf("%5s  created %d  routed %d  waiting %d  p95 wait %s  declines re-routed %d  timeouts re-routed %d  API calls/routed %.2f",
		elapsed.Round(time.Second), f.created, f.routed, f.waiting, f.p95.Round(100*time.Millisecond), f.declined, f.timedOut, f.apiPerRouted)
}
