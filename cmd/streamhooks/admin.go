package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/streamhooks/streamhooks/internal/config"
	"github.com/streamhooks/streamhooks/internal/roles"
	"github.com/streamhooks/streamhooks/models"
)

func cmdMigrate(ctx context.Context, cfg config.Config, args []string, out streams) error {
	stdout := out.stdout
	fs := newFlags("migrate", "migrate [--data-dir DIR]", out.stderr)
	cfg.DataDirFlag(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	dsn, err := cfg.DatabaseURLOrDev()
	if err != nil {
		return err
	}
	store, err := models.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migrations %v; schema is up to date\n", len(applied), applied)
	return nil
}

func cmdOrgs(ctx context.Context, cfg config.Config, args []string, out streams) error {
	stdout := out.stdout
	fs := newFlags("orgs", "orgs create <org_id> [--name NAME] [--data-dir DIR]", out.stderr)
	cfg.DataDirFlag(fs)
	name := fs.String("name", "", "display name of the organization")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "create" {
		fs.Usage()
		return fmt.Errorf("%w: want 'orgs create <org_id>'", config.ErrUsage)
	}
	store, err := roles.OpenStore(ctx, &cfg, true)
	if err != nil {
		return err
	}
	defer store.Close()
	org, err := store.CreateOrganization(ctx, pos[1], *name)
	if err != nil {
		return userError(err)
	}
	fmt.Fprintln(stdout, org.ID)
	return nil
}

func cmdTokens(ctx context.Context, cfg config.Config, args []string, out streams) error {
	stdout, stderr := out.stdout, out.stderr
	fs := newFlags("tokens", "tokens create --org <org_id> | tokens create --service | tokens revoke <token>", stderr)
	cfg.DataDirFlag(fs)
	org := fs.String("org", "", "organization of a new customer token")
	service := fs.Bool("service", false, "create a service token (for platform services signalling asset events)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 1 && pos[0] == "create" && (*org == "") == *service:
	case len(pos) == 2 && pos[0] == "revoke" && *org == "" && !*service:
	default:
		fs.Usage()
		return fmt.Errorf("%w: want 'tokens create --org <org_id>', 'tokens create --service' or 'tokens revoke <token>'", config.ErrUsage)
	}
	store, err := roles.OpenStore(ctx, &cfg, true)
	if err != nil {
		return err
	}
	defer store.Close()
	if pos[0] == "revoke" {
		if err := store.RevokeToken(ctx, pos[1]); err != nil {
			return userError(err)
		}
		fmt.Fprintln(stderr, "token revoked")
		return nil
	}
	scope := models.ScopeCustomer
	if *service {
		scope = models.ScopeService
	}
	tok, err := store.CreateToken(ctx, scope, *org)
	if err != nil {
		return userError(err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// userError shows a domain error by its message alone ("Organization
// already exists.") and any other error in full, for an operator's terminal.
func userError(err error) error {
	var e *models.Error
	if errors.As(err, &e) {
		return errors.New(e.Message)
	}
	return err
}
