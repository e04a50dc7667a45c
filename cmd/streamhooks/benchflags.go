package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/streamhooks/streamhooks/internal/bench"
	"github.com/streamhooks/streamhooks/internal/config"
)

func cmdBench(ctx context.Context, cfg config.Config, args []string, out streams) error {
	bc := bench.Options{}
	fs := newFlags("bench", "bench [--shape dev|production] [--events N] [--webhooks 1,5] [--concurrency C] [--rate R] [--duration D] [--json] [--cpuprofile FILE]", out.stderr)
	fs.StringVar(&bc.Shape, "shape", bench.ShapeDev, "dev: the whole system in this process (SQLite unless DATABASE_URL, embedded Temporal on SQLite); "+
		"production: api and worker processes, fresh PostgreSQL databases for the app and Temporal on the server of DATABASE_URL, machine-wide CPU")
	fs.IntVar(&bc.Events, "events", 2000, "events per saturation scenario")
	hooks := fs.String("webhooks", "1,5", "webhooks per organization, one saturation scenario each")
	fs.IntVar(&bc.Concurrency, "concurrency", 16, "concurrent event signals (and ceiling requests)")
	rate := fs.String("rate", "50%", "offered events per second in the fixed-load scenario: a number, or a percentage of the first saturation scenario's events delivered per second (0 skips it)")
	fs.DurationVar(&bc.Duration, "duration", 10*time.Second, "length of the fixed-load scenario")
	fs.BoolVar(&bc.JSON, "json", false, "print results as JSON")
	fs.BoolVar(&bc.Eager, "eager", true, "eager workflow start (the worker is in this process; dev shape only)")
	fs.IntVar(&bc.ActivitySlot, "activity-slots", 0, "worker activity slots (0: SDK default; dev shape only)")
	fs.IntVar(&bc.Pollers, "pollers", 0, "worker pollers per kind (0: SDK default; dev shape only)")
	fs.BoolVar(&bc.NoTemporalCeiling, "no-temporal-ceiling", false, "skip the temporal-ceiling yardstick scenario")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	switch bc.Shape {
	case bench.ShapeDev:
	case bench.ShapeProduction:
		// The roles take no such settings: the run would not be what the
		// flags say.
		var devOnly []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "eager" || f.Name == "activity-slots" || f.Name == "pollers" {
				devOnly = append(devOnly, "--"+f.Name)
			}
		})
		if len(devOnly) > 0 {
			return fmt.Errorf("%w: %s: dev shape only (the api and worker roles have no such settings)", config.ErrUsage, strings.Join(devOnly, ", "))
		}
	default:
		return fmt.Errorf("%w: --shape %q: want dev or production", config.ErrUsage, bc.Shape)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if p, ok := strings.CutSuffix(*rate, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("%w: --rate %q: want events per second or 1%%..1000%%", config.ErrUsage, *rate)
		}
		bc.RatePercent = n
	} else if n, err := strconv.Atoi(*rate); err != nil || n < 0 {
		return fmt.Errorf("%w: --rate %q: want events per second or 1%%..1000%%", config.ErrUsage, *rate)
	} else {
		bc.Rate = n
	}
	for _, f := range strings.Split(*hooks, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%w: --webhooks %q", config.ErrUsage, *hooks)
		}
		bc.Webhooks = append(bc.Webhooks, n)
	}
	return bench.Run(ctx, bench.Input{Options: bc, Config: cfg, Stdout: out.stdout, Stderr: out.stderr})
}
