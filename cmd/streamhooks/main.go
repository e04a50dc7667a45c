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

	"github.com/streamhooks/streamhooks/internal/config"
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
  reencrypt                seal every webhook secret under the current key [--batch N]
  version                  print the version

Run "streamhooks <command> --help" for the flags of a command.
The database is DATABASE_URL when set, else the SQLite file of the dev data
dir (--data-dir, STREAMHOOKS_DATA_DIR, default ./.streamhooks).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], streams{stdout: os.Stdout, stderr: os.Stderr}, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code: 0 on success,
// 2 for bad usage, 1 for any other failure. The environment is read once,
// through getenv, into the one config every command takes.
func run(ctx context.Context, args []string, out streams, getenv func(string) string) int {
	err := dispatch(ctx, args, out, config.Load(getenv))
	stderr := out.stderr
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, config.ErrUsage):
		fmt.Fprintf(stderr, "streamhooks: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "streamhooks: %v\n", err)
		return 1
	}
}

// streams are where a command writes.
type streams struct{ stdout, stderr io.Writer }

func dispatch(ctx context.Context, args []string, out streams, cfg config.Config) error {
	stdout, stderr := out.stdout, out.stderr
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command given", config.ErrUsage)
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
		return cmdAPI(ctx, cfg, rest, stderr)
	case "dev":
		return cmdDev(ctx, cfg, rest, out)
	case "bench":
		return cmdBench(ctx, cfg, rest, out)
	case "receive":
		return cmdReceive(ctx, rest, stdout, stderr)
	case "worker":
		return cmdWorker(ctx, cfg, rest, stderr)
	case "migrate":
		return cmdMigrate(ctx, cfg, rest, out)
	case "orgs":
		return cmdOrgs(ctx, cfg, rest, out)
	case "tokens":
		return cmdTokens(ctx, cfg, rest, out)
	case "reencrypt":
		return cmdReencrypt(ctx, cfg, rest, out)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", config.ErrUsage, cmd)
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
			return nil, fmt.Errorf("%w: %v", config.ErrUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
