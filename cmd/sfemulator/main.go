package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

const (
	exitOK      = 0
	exitRuntime = 1
	exitConfig  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run starts the emulator and serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sfemulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8443", "listen address (host:port; port 0 picks a free one)")
	seed := fs.String("seed", "demo", `org to load: "demo" or a YAML seed file`)
	control := fs.String("control-token", os.Getenv("SFEMULATOR_CONTROL_TOKEN"), "control API bearer token (env SFEMULATOR_CONTROL_TOKEN; generated when empty)")
	session := fs.Duration("session-timeout", emulator.DefaultSessionTimeout, "access token lifetime (from issue, or from last use with --extend-session-on-activity)")
	extend := fs.Bool("extend-session-on-activity", false, "every REST or CometD use restarts the session timeout (default: tokens expire session-timeout after issue)")
	apiLimit := fs.Int("api-limit", emulator.DefaultDailyAPILimit, "daily API request allocation")
	advice := fs.Duration("advice-timeout", emulator.DefaultAdviceTimeout, "CometD long-poll timeout")
	channelDeletes := fs.Bool("channel-deletes", false, "deliver DELETE events, enriched, on /data/ExternalRoutingChannel__chn (default: not delivered, as for a hard delete)")
	noise := fs.Float64("noise-rate", 0, "probability (0..1) that each changed record gets a further UPDATE routing must ignore")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		say(stderr, "sfemulator: --log-level %q: %v\n", *logLevel, err)
		return exitConfig
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	org := emulator.DemoSeed()
	if *seed != "demo" {
		s, err := emulator.LoadSeedFile(*seed)
		if err != nil {
			say(stderr, "sfemulator: --seed: %v\n", err)
			return exitConfig
		}
		org = s
	}
	em, err := emulator.New(emulator.Options{
		Seed: org, ControlToken: *control, SessionTimeout: *session, DailyAPILimit: *apiLimit,
		AdviceTimeout: *advice, ChannelDeletes: *channelDeletes,
		ExtendSessionOnActivity: *extend, NoiseRate: *noise, Logger: logger,
	})
	if err != nil {
		say(stderr, "sfemulator: %v\n", err)
		return exitConfig
	}
	defer em.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		say(stderr, "sfemulator: listen on %s: %v\n", *addr, err)
		return exitConfig
	}
	url := "http://" + ln.Addr().String()
	printBanner(stdout, url, org, em.ControlToken())
	srv := &http.Server{Handler: em, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serve failed", "err", err)
			return exitRuntime
		}
	case <-ctx.Done():
		em.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	return exitOK
}

// printBanner writes the URL line first (scripts parse it), then the credentials.
func printBanner(w io.Writer, url string, org emulator.Seed, control string) {
	say(w, "sfemulator listening on %s\n", url)
	say(w, "client_id: %s\n", org.ConnectedApp.ClientID)
	say(w, "client_secret: %s\n", org.ConnectedApp.ClientSecret)
	if len(org.Users) > 0 {
		say(w, "username: %s\n", org.Users[0].Username)
		say(w, "password: %s\n", org.Users[0].Password)
	}
	say(w, "control_token: %s\n", control)
	// login_url is what a client takes as its login (authorization server) URL, as
	// https://login.salesforce.com is for a real org; token_url is the token endpoint under it.
	say(w, "login_url: %s\n", url)
	say(w, "token_url: %s/services/oauth2/token\n", url)
}

// say writes one formatted line; a failed write to stdout or stderr has nowhere to be reported.
func say(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}
