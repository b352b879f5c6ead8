package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/omniroute/omniroute/connector"
	"github.com/omniroute/omniroute/mapping"
)

const mappingUsage = `usage:
  omniroute mapping check [-offline] FILE
                                 validate FILE; with OMNIROUTE_SALESFORCE_CLIENT_ID set, also against the org
  omniroute mapping fetch [-o FILE]
                                 write a commented mapping skeleton from the org (default stdout)

Both read the org with the OMNIROUTE_SALESFORCE_* variables of ` + "`omniroute run -h`" + `; without
OMNIROUTE_SALESFORCE_CLIENT_ID, check is offline. The OAuth flow is OMNIROUTE_SALESFORCE_AUTH, or
inferred: OMNIROUTE_SALESFORCE_PRIVATE_KEY_FILE means jwt, OMNIROUTE_SALESFORCE_PASSWORD means
password, OMNIROUTE_SALESFORCE_CLIENT_SECRET alone means client_credentials.
`

// mappingCommand runs `omniroute mapping check|fetch`. Exit codes: 0 ok, 1 problems found or a
// runtime error, 2 usage or configuration.
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

// orgFromEnv reads the configuration and connects to the org; sf is nil when no credentials
// are set.
func orgFromEnv(stderr io.Writer, cmd string) (sf *connector.Salesforce, code int) {
	cfg, err := connector.LoadConfig()
	if err == nil {
		err = cfg.ValidateOrgAccess()
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute mapping %s: configuration:\n%v\n", cmd, err)
		return nil, exitConfig
	}
	if !cfg.Salesforce.Configured() {
		return nil, exitOK
	}
	sf, err = connector.NewSalesforce(cfg.Salesforce, connector.SalesforceOptions{})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute mapping %s: %v\n", cmd, err)
		return nil, exitConfig
	}
	return sf, exitOK
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
	checked := "offline"
	if !*offline {
		sf, code := orgFromEnv(stderr, "check")
		if code != exitOK {
			return code
		}
		if sf != nil {
			org, err := sf.ReadOrg(ctx)
			if err != nil {
				_, _ = fmt.Fprintf(stderr, "omniroute mapping check: %v\n", err)
				return exitError
			}
			problems, _ = connector.CheckOrg(cfg, org)
			checked = "against the org"
		}
	}
	for _, p := range problems {
		_, _ = fmt.Fprintln(stderr, p.String())
	}
	if len(problems) > 0 {
		_, _ = fmt.Fprintf(stderr, "%s: %d problem(s) (checked %s)\n", path, len(problems), checked)
		return exitError
	}
	_, _ = fmt.Fprintf(stdout, "%s: ok (checked %s)\n", path, checked)
	return exitOK
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
	sf, code := orgFromEnv(stderr, "fetch")
	if code != exitOK {
		return code
	}
	if sf == nil {
		_, _ = fmt.Fprintf(stderr, "omniroute mapping fetch: set OMNIROUTE_SALESFORCE_CLIENT_ID and the other OMNIROUTE_SALESFORCE_* variables\n")
		return exitConfig
	}
	org, err := sf.ReadOrg(ctx)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "omniroute mapping fetch: %v\n", err)
		return exitError
	}
	skel := mapping.Skeleton(org)
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
