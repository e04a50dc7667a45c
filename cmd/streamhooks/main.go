// Command streamhooks is the one binary of streamhooks: the API, the worker,
// the migrator, admin commands and the one-process dev mode.
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
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `streamhooks — durable, signed webhook delivery for video platforms.

Usage:
  streamhooks <command> [flags]

Commands:
  dev                      run everything in one process: API, worker, Temporal, Temporal UI
  bench                    measure delivery throughput and latency on this machine
  receive                  run a local test receiver that prints and verifies deliveries
  api                      run the HTTP API (DATABASE_URL, TEMPORAL_ADDRESS)
  worker                   run the delivery worker (DATABASE_URL, TEMPORAL_ADDRESS)
  migrate                  apply database migrations
  orgs create <org_id>     create an organization [--name NAME]
  tokens create            create a token: --org <org_id> (customer) or --service
  tokens revoke <token>    revoke a token
  version                  print the version

Run "streamhooks <command> --help" for the flags of a command.
The database is DATABASE_URL when set, else the SQLite file of the dev data
dir (--data-dir, STREAMHOOKS_DATA_DIR, default ./.streamhooks).
`

// errUsage marks errors caused by wrong command-line use (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code: 0 on success,
// 2 for bad usage, 1 for any other failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "streamhooks: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "streamhooks: %v\n", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version", "--version":
		fmt.Fprintln(stdout, "streamhooks", version)
		return nil
	case "api":
		return cmdAPI(ctx, rest, stderr)
	case "dev":
		return cmdDev(ctx, rest, stdout, stderr)
	case "bench":
		return cmdBench(ctx, rest, stdout, stderr)
	case "receive":
		return cmdReceive(ctx, rest, stdout, stderr)
	case "worker":
		return cmdWorker(ctx, rest, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, stdout, stderr)
	case "orgs":
		return cmdOrgs(ctx, rest, stdout, stderr)
	case "tokens":
		return cmdTokens(ctx, rest, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: streamhooks %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before or after positional arguments
// ("orgs create demo --name Demo") and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
