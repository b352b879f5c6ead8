package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/omniroute/omniroute/connector"
)

const runUsage = `usage: omniroute run

Runs the daemon until SIGTERM or SIGINT (then it stops gracefully within
OMNIROUTE_SHUTDOWN_TIMEOUT and exits 0). SIGHUP reloads the mapping file.
Exit codes: 0 stopped, 1 runtime failure, 2 configuration or mapping problem.
docs/operations.md explains every variable and every start-up failure.

`

// runCommand runs the daemon: the environment becomes a connector.Config, SIGHUP becomes a
// mapping reload, and ctx (SIGTERM, SIGINT) stops it.
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("omniroute run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		w, code := stderr, exitConfig
		if errors.Is(err, flag.ErrHelp) {
			w, code = stdout, exitOK
		} else if err != nil {
			_, _ = fmt.Fprintf(stderr, "omniroute run: %v\n", err)
		}
		_, _ = io.WriteString(w, runUsage)
		_ = connector.Usage(w)
		return code
	}
	cfg, err := connector.LoadConfig()
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute run: configuration:\n%v\n(omniroute run -h lists every variable)\n", err)
		return exitConfig
	}
	logger := cfg.NewLogger(stderr)
	c, err := connector.New(connector.Options{Config: cfg, Logger: logger, Version: version})
	var cerr *connector.ConfigError
	switch {
	case errors.As(err, &cerr):
		logger.Error("omniroute cannot start", "err", err)
		return exitConfig
	case err != nil:
		logger.Error("omniroute cannot start", "err", err)
		return exitError
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			c.Reload()
		}
	}()
	if err := c.Run(ctx); err != nil {
		logger.Error("omniroute stopped", "err", err)
		return exitError
	}
	return exitOK
}
