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
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
)

// Dev-mode environment variables (flags win).
const (
	envTemporalAddr = "STREAMHOOKS_TEMPORAL_ADDR"
	envUIAddr       = "STREAMHOOKS_UI_ADDR"
)

// devOrg is the organization the dev mode seeds on first start.
const devOrg = "demo"

// devCredentials are the seeded tokens, kept in the data dir so every start
// can print them (the database only holds their hashes).
type devCredentials struct {
	CustomerToken string `json:"customer_token"`
	ServiceToken  string `json:"service_token"`
}

func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	started := time.Now()
	cfg := loadConfig()
	fs := newFlags("dev", "dev [--data-dir DIR] [--api-addr ADDR] [--temporal-addr ADDR] [--ui-addr ADDR]", stderr)
	cfg.dataDirFlag(fs)
	apiAddr := fs.String("api-addr", envOr(envAPIAddr, "127.0.0.1:8080"), "API listen address ("+envAPIAddr+")")
	temporalAddr := fs.String("temporal-addr", envOr(envTemporalAddr, "127.0.0.1:7233"), "Temporal frontend address ("+envTemporalAddr+")")
	uiAddr := fs.String("ui-addr", envOr(envUIAddr, "127.0.0.1:8233"), "Temporal UI address ("+envUIAddr+")")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	d, err := cfg.delivery()
	if err != nil {
		return err
	}
	recon, err := cfg.reconcile()
	if err != nil {
		return err
	}
	// Local receivers must work; private and metadata ranges stay blocked.
	d.Allowed = append(append([]netip.Prefix{}, egress.LoopbackCIDRs...), d.Allowed...)
	log, err := newLogger(stderr, cfg.LogLevel, true)
	if err != nil {
		return err
	}

	if err := checkDataDir(cfg.DataDir); err != nil {
		return err
	}
	for _, a := range []struct{ what, addr string }{{"Temporal", *temporalAddr}, {"Temporal UI", *uiAddr}} {
		ln, err := listen(a.what, a.addr)
		if err != nil {
			return err
		}
		_ = ln.Close()
	}
	apiLn, err := listen("API", *apiAddr)
	if err != nil {
		return err
	}
	defer apiLn.Close()

	store, err := openStore(ctx, &cfg, true)
	if err != nil {
		return fmt.Errorf("app database in %s is unusable (corrupt? delete it to start afresh): %w", cfg.DataDir, err)
	}
	defer store.Close()
	if err := cfg.useSecretKey(store, filepath.Join(cfg.DataDir, "secret.key")); err != nil {
		return err
	}
	creds, err := seedDev(ctx, store, cfg.DataDir)
	if err != nil {
		return err
	}

	et, err := startEmbeddedTemporal(embeddedTemporalConfig{DataDir: cfg.DataDir, FrontendAddr: *temporalAddr, UIAddr: *uiAddr})
	if err != nil {
		return err
	}
	defer func() {
		if err := et.Stop(); err != nil {
			log.Warn("stop Temporal server", "error", err)
		}
	}()
	cfg.TemporalAddress, cfg.TemporalNamespace = *temporalAddr, devNamespace
	c, err := dialTemporal(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()

	reg := newRegistry()
	acts := newActivities(store, d, reg, log)
	starter := newStarter(ctx, c, &cfg, log)
	starter.EagerStart = true // the worker is in this process (docs/benchmarks.md)
	workerCtx, stopWorker := context.WithCancel(ctx)
	outbox := service.NewOutbox(store, starter, log, reg)
	go outbox.Run(workerCtx)
	workerDone := make(chan error, 1)
	go func() {
		workerDone <- runWorker(workerCtx, workerRole{client: c, acts: acts, starter: starter, store: store,
			delivery: d, recon: recon, reg: reg, log: log, outbox: outbox})
	}()

	printBanner(stdout, banner{
		API: "http://" + apiLn.Addr().String(), UI: "http://" + *uiAddr, Temporal: *temporalAddr,
		DataDir: cfg.DataDir, DB: dbKind(&cfg), Creds: creds, Allowed: d.Allowed, Startup: time.Since(started),
	})
	// The dev process is its own worker: it needs Temporal to deliver.
	tr := temporalReady(c)
	tr.Required = true
	h := api.New(api.Config{Store: store, Workflows: starter, Outbox: outbox, Ready: []api.ReadyCheck{tr},
		Attempter: acts, Registry: reg, Logger: log, Guard: egress.NewGuard(d.Allowed)})
	apiErr := serveHTTP(ctx, apiLn, h, log)
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

func dbKind(cfg *config) string {
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

`, b.Startup.Round(time.Millisecond), b.API, b.UI, b.Temporal, devNamespace, b.DataDir, b.DB, devOrg,
		b.Creds.CustomerToken, b.Creds.ServiceToken, fmt.Sprint(b.Allowed))
}
