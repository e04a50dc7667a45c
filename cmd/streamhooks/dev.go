package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/internal/config"
	"github.com/streamhooks/streamhooks/internal/devserver"
	"github.com/streamhooks/streamhooks/internal/roles"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
	"github.com/streamhooks/streamhooks/worker"
)

// devOrg is the organization the dev mode seeds on first start.
const devOrg = "demo"

// devCredentials are the seeded tokens, kept in the data dir so every start
// can print them (the database only holds their hashes).
type devCredentials struct {
	CustomerToken string `json:"customer_token"`
	ServiceToken  string `json:"service_token"`
}

func cmdDev(ctx context.Context, cfg config.Config, args []string, out streams) error {
	started := time.Now()
	stdout, stderr := out.stdout, out.stderr
	fs := newFlags("dev", "dev [--data-dir DIR] [--api-addr ADDR] [--temporal-addr ADDR] [--ui-addr ADDR]", stderr)
	cfg.DataDirFlag(fs)
	fs.StringVar(&cfg.DevAPIAddr, "api-addr", cfg.DevAPIAddr, "API listen address ("+config.EnvAPIAddr+")")
	fs.StringVar(&cfg.DevTemporalAddr, "temporal-addr", cfg.DevTemporalAddr, "Temporal frontend address ("+config.EnvDevTemporalAddr+")")
	fs.StringVar(&cfg.DevUIAddr, "ui-addr", cfg.DevUIAddr, "Temporal UI address ("+config.EnvDevUIAddr+")")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	d, err := cfg.Delivery()
	if err != nil {
		return err
	}
	recon, err := cfg.Reconcile()
	if err != nil {
		return err
	}
	// Local receivers must work; private and metadata ranges stay blocked.
	d.Allowed = append(append([]netip.Prefix{}, egress.LoopbackCIDRs...), d.Allowed...)
	log, err := cfg.Logger(stderr, true)
	if err != nil {
		return err
	}

	if err := checkDataDir(cfg.DataDir); err != nil {
		return err
	}
	for _, a := range []struct{ what, addr string }{{"Temporal", cfg.DevTemporalAddr}, {"Temporal UI", cfg.DevUIAddr}} {
		ln, err := roles.Listen(a.what, a.addr)
		if err != nil {
			return err
		}
		_ = ln.Close()
	}
	apiLn, err := roles.Listen("API", cfg.DevAPIAddr)
	if err != nil {
		return err
	}
	defer apiLn.Close()

	store, err := roles.OpenStore(ctx, &cfg, true)
	if err != nil {
		return fmt.Errorf("app database in %s is unusable (corrupt? delete it to start afresh): %w", cfg.DataDir, err)
	}
	defer store.Close()
	if err := cfg.UseSecretKey(store, filepath.Join(cfg.DataDir, "secret.key")); err != nil {
		return err
	}
	creds, err := seedDev(ctx, store, cfg.DataDir)
	if err != nil {
		return err
	}

	et, err := devserver.Start(devserver.Config{DataDir: cfg.DataDir, FrontendAddr: cfg.DevTemporalAddr, UIAddr: cfg.DevUIAddr})
	if err != nil {
		return err
	}
	defer func() {
		if err := et.Stop(); err != nil {
			log.Warn("stop Temporal server", "error", err)
		}
	}()
	cfg.TemporalAddress, cfg.TemporalNamespace = cfg.DevTemporalAddr, devserver.Namespace
	c, err := roles.DialTemporal(ctx, &cfg, log)
	if err != nil {
		return err
	}
	retention, err := cfg.RetentionPeriod()
	if err != nil {
		return err
	}
	// Closed workflows are kept as long as the events they delivered
	// (DESIGN §10), so Temporal UI shows the history of every event the
	// API still lists.
	if err := devserver.SetRetention(ctx, c, retention); err != nil {
		log.Warn("set the namespace retention", "error", err)
	}
	defer c.Close()

	reg := roles.NewRegistry()
	w := worker.Assemble(workerConfig(worker.Config{Client: c, Store: store, Registry: reg, Logger: log,
		Options: worker.Options{TaskQueue: cfg.TaskQueue}}, d))
	starter := roles.NewStarter(ctx, c, &cfg, log)
	starter.EagerStart = true // the worker is in this process (docs/benchmarks.md)
	workerCtx, stopWorker := context.WithCancel(ctx)
	outbox := service.NewOutbox(store, starter, log, reg)
	go outbox.Run(workerCtx)
	workerDone := make(chan error, 1)
	go func() {
		workerDone <- worker.Run(workerCtx, worker.RunInput{Worker: w, Starter: starter, Store: store,
			ReconcileInterval: recon.Interval, ReconcileGrace: recon.Grace, Registry: reg, Logger: log, Outbox: outbox, Retention: retention})
	}()

	printBanner(stdout, banner{
		API: "http://" + apiLn.Addr().String(), UI: "http://" + cfg.DevUIAddr, Temporal: cfg.DevTemporalAddr,
		DataDir: cfg.DataDir, DB: dbKind(&cfg), Creds: creds, Allowed: d.Allowed, Startup: time.Since(started),
	})
	// The dev process is its own worker: it needs Temporal to deliver.
	tr := roles.TemporalReady(c)
	tr.Required = true
	h := api.New(api.Config{Store: store, Workflows: starter, Outbox: outbox, Ready: []api.ReadyCheck{tr},
		Attempter: w.Activities, Registry: reg, Logger: log, Guard: egress.NewGuard(d.Allowed)})
	apiErr := roles.ServeHTTP(ctx, apiLn, h, log)
	stopWorker()
	if err := <-workerDone; err != nil && apiErr == nil {
		apiErr = err
	}
	fmt.Fprintln(stderr, "streamhooks dev stopped")
	return apiErr
}

// checkDataDir creates the data dir and proves it writable, so an unusable
// directory is one clear line at start.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s cannot be created: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-probe-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// seedDev creates organization demo with a customer and a service token on
// first start, and returns the tokens on every start.
func seedDev(ctx context.Context, store *models.Store, dataDir string) (devCredentials, error) {
	path := filepath.Join(dataDir, "dev-credentials.json")
	var creds devCredentials
	if raw, err := os.ReadFile(path); err == nil && json.Unmarshal(raw, &creds) == nil && creds.CustomerToken != "" {
		if p, err := store.Authenticate(ctx, creds.CustomerToken); err == nil && p.OrganizationID == devOrg {
			return creds, nil
		}
	}
	if _, err := store.CreateOrganization(ctx, devOrg, "Demo organization"); err != nil && models.ErrorCode(err) != models.ECONFLICT {
		return creds, fmt.Errorf("seed organization %s: %w", devOrg, err)
	}
	var err error
	if creds.CustomerToken, err = store.CreateToken(ctx, models.ScopeCustomer, devOrg); err != nil {
		return creds, fmt.Errorf("seed customer token: %w", err)
	}
	if creds.ServiceToken, err = store.CreateToken(ctx, models.ScopeService, ""); err != nil {
		return creds, fmt.Errorf("seed service token: %w", err)
	}
	raw, _ := json.MarshalIndent(creds, "", "  ")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return creds, fmt.Errorf("save dev credentials: %w", err)
	}
	return creds, nil
}

func dbKind(cfg *config.Config) string {
	if cfg.DatabaseURL != "" {
		return "DATABASE_URL"
	}
	return "SQLite in the data dir"
}

type banner struct {
	API, UI, Temporal, DataDir, DB string
	Creds                          devCredentials
	Allowed                        []netip.Prefix
	Startup                        time.Duration
}

func printBanner(w io.Writer, b banner) {
	fmt.Fprintf(w, `
streamhooks dev is running (started in %s). Ctrl-C stops it; data survives restarts.

  API            %s
  Temporal UI    %s
  Temporal       %s (namespace %s)
  Data dir       %s (app database: %s)
  Organization   %s
  Customer token %s
  Service token  %s
  Egress         loopback targets allowed for local receivers (%s);
                 private, link-local and cloud-metadata addresses stay blocked.

Try it (a local receiver that prints and verifies deliveries:
  streamhooks receive --addr 127.0.0.1:9000 --secret my-secret):

  curl -s -X POST %[2]s/api/v1/demo/webhooks/ -H 'Authorization: Token %[9]s' \
       -H 'Content-Type: application/json' -d '{"url": "http://127.0.0.1:9000/hook", "secret_token": "my-secret"}'

  curl -s -X POST %[2]s/internal/v1/asset-events/ -H 'Authorization: Token %[10]s' \
       -H 'Content-Type: application/json' \
       -d '{"organization_id": "demo", "asset": {"id": "vid_1", "title": "Demo", "type": "video", "video": {"status": "Completed"}}}'

  # then, with the "id" the first call returned:
  curl -s %[2]s/api/v1/demo/webhooks/$WEBHOOK_ID/deliveries/ -H 'Authorization: Token %[9]s'

Find it in Temporal UI with: OrganizationId="demo" AND AssetId="vid_1"

`, b.Startup.Round(time.Millisecond), b.API, b.UI, b.Temporal, devserver.Namespace, b.DataDir, b.DB, devOrg,
		b.Creds.CustomerToken, b.Creds.ServiceToken, fmt.Sprint(b.Allowed))
}
