package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/streamhooks/streamhooks/internal/config"
	"github.com/streamhooks/streamhooks/internal/roles"
)

// cmdReencrypt seals every stored webhook secret again under the current
// (first) key of STREAMHOOKS_SECRET_KEY, step 3 of a master-key rotation
// (docs/reliability.md, "Rotating the master key"): once it has run, the
// older keys can be dropped from the list. It is safe while the api and
// workers serve, and running it again rewrites nothing. Like the other
// admin commands it works on DATABASE_URL, or on the dev data dir (whose
// secret.key holds the key) when DATABASE_URL is unset.
func cmdReencrypt(ctx context.Context, cfg config.Config, args []string, out streams) error {
	fs := newFlags("reencrypt", "reencrypt [--batch N] [--data-dir DIR]", out.stderr)
	cfg.DataDirFlag(fs)
	batch := fs.Int("batch", 500, "webhooks read per query")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *batch <= 0 {
		fs.Usage()
		return fmt.Errorf("%w: want 'reencrypt [--batch N]' with N > 0", config.ErrUsage)
	}
	// The schema must be current (previous_secret_token is a migrated
	// column), but a data tool applies no migration on its own.
	store, err := roles.OpenStore(ctx, &cfg, false)
	if err != nil {
		return err
	}
	defer store.Close()
	keyFile := ""
	if cfg.DatabaseURL == "" {
		keyFile = filepath.Join(cfg.DataDir, "secret.key")
	}
	if err := cfg.UseSecretKey(store, keyFile); err != nil {
		return err
	}
	kid := store.CurrentSecretKeyID()
	res, err := store.ReencryptSecrets(ctx, *batch)
	if err != nil {
		return fmt.Errorf("re-encrypted %d of the %d webhooks scanned under key %s, then: %w", res.Rewritten, res.Scanned, kid, err)
	}
	fmt.Fprintf(out.stdout, "re-encrypted %d of %d webhook secrets under key %s\n", res.Rewritten, res.Scanned, kid)
	return nil
}
