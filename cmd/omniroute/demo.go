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
	"time"

	"github.com/omniroute/omniroute/salesforce/emulator"
)

// demoCommand starts the emulator's demo org on loopback with simulated agents, so a person can
// watch Omni-Channel external routing work end to end without a Salesforce org: agents go online,
// work created through the control API gets a PendingServiceRouting, and agents answer the work
// they are offered by themselves.
func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("omniroute demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8089", "loopback address of the demo org (port 0 picks a free one)")
	agents := fs.Int("agents", 5, "how many demo agents to put online with the all-channels status")
	acceptAfter := fs.Duration("accept-after", 2*time.Second, "simulated agents answer offered work after this long")
	closeAfter := fs.Duration("close-after", 30*time.Second, "simulated agents close accepted work after this long")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	org := emulator.DemoSeed()
	em, err := emulator.New(emulator.Options{
		Seed:   org,
		Logger: logger,
		Auto:   emulator.AutoOptions{Enabled: true, AcceptAfter: *acceptAfter, CloseAfter: *closeAfter},
	})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute demo: %v\n", err)
		return exitError
	}
	defer em.Close()

	online := 0
	for _, u := range org.Users {
		if online == *agents {
			break
		}
		if !u.Agent {
			continue
		}
		if err := em.SetPresence(u.Username, "Available"); err != nil {
			_, _ = fmt.Fprintf(stderr, "omniroute demo: put %s online: %v\n", u.Username, err)
			return exitError
		}
		online++
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *addr)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute demo: listen on %s: %v\n", *addr, err)
		return exitConfig
	}
	url := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: em, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	_, _ = fmt.Fprintf(stdout, `omniroute demo org listening on %[1]s

  connected app   %[2]s / %[3]s
  integration     %[4]s / %[5]s
  control token   %[6]s
  agents online   %[7]d (status Available); they accept offered work after %[8]s and close it after %[9]s

Try it:
  # create a chat waiting in the Support_EN queue (Salesforce creates a PendingServiceRouting)
  curl -s -H 'Authorization: Bearer %[6]s' -d '{"channel":"Chat","queue":"Support_EN","subject":"Hello"}' %[1]s/emulator/v1/work
  # every AgentWork with its status history
  curl -s -H 'Authorization: Bearer %[6]s' %[1]s/emulator/v1/agentwork
  # validate the demo mapping against this org (client-credentials flow)
  OMNIROUTE_SALESFORCE_LOGIN_URL=%[1]s OMNIROUTE_SALESFORCE_CLIENT_ID=%[2]s \
  OMNIROUTE_SALESFORCE_CLIENT_SECRET=%[3]s go run ./cmd/omniroute mapping check docs/examples/demo-mapping.yaml

Press Ctrl-C to stop.
`, url, org.ConnectedApp.ClientID, org.ConnectedApp.ClientSecret, org.Users[0].Username, org.Users[0].Password,
		em.ControlToken(), online, *acceptAfter, *closeAfter)

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			_, _ = fmt.Fprintf(stderr, "omniroute demo: serve: %v\n", err)
			return exitError
		}
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	return exitOK
}
