// Command omniroute is the omniroute daemon and its tools.
//
//	omniroute [run]                run the daemon (configured by OMNIROUTE_* variables: run -h)
//	omniroute demo                 a demo org, simulated agents and omniroute routing, all on loopback
//	omniroute mapping check FILE   validate a mapping file (offline, and against the org given credentials)
//	omniroute mapping fetch        write a mapping skeleton from the org's Omni-Channel configuration
//	omniroute version              print the version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, as consul-template defines them: 0 ok, 1 runtime, 2 usage or configuration.
const (
	exitOK     = 0
	exitError  = 1
	exitConfig = 2
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 || (len(args[0]) > 0 && args[0][0] == '-' && args[0] != "-h" && args[0] != "--help" && args[0] != "--version") {
		return runCommand(ctx, args, stdout, stderr)
	}
	switch args[0] {
	case "run":
		return runCommand(ctx, args[1:], stdout, stderr)
	case "demo":
		return demoCommand(ctx, args[1:], stdout, stderr)
	case "mapping":
		return mappingCommand(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		_, _ = fmt.Fprintf(stdout, "omniroute %s\n", version)
		return exitOK
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	default:
		_, _ = fmt.Fprintf(stderr, "omniroute: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitConfig
	}
}

func usage(w io.Writer) {
	_, _ = fmt.Fprint(w, `usage: omniroute [command] [arguments]

commands:
  run                  run the daemon (the default); run -h lists its OMNIROUTE_* variables
  demo                 a demo org, simulated agents and omniroute routing, all on loopback
  mapping check FILE   validate a mapping file; with OMNIROUTE_SALESFORCE_* set, also against the org
  mapping fetch        write a mapping skeleton from the org's Omni-Channel configuration
  version              print the version
`)
}
