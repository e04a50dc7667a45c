// Package activities holds every side effect of a delivery: loading and
// recording rows, signing (package signature), and the HTTP attempt through
// the guarded client of package egress. Workflows call the methods of
// Activities through a nil *Activities.
package activities

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
)

// Defaults of Config.
const (
	DefaultAttemptTimeout = 15 * time.Second
	// DefaultDisableAfter is how long a webhook may fail continuously
	// before it is disabled automatically.
	DefaultDisableAfter = 5 * 24 * time.Hour
	// MaxStoredBody caps the response body kept on an attempt row.
	MaxStoredBody = 64 << 10
)

// Config is what the activities need, injected by the worker.
type Config struct {
	Store          *models.Store
	Guard          *egress.Guard   // egress policy; refuses every non-public address when nil
	Resolver       egress.Resolver // name lookups of the built client; net.DefaultResolver when nil
	Schedule       []time.Duration
	AttemptTimeout time.Duration
	UserAgent      string
	// DisableAfter deactivates a webhook whose attempts have all failed for
	// this long; 0 never does.
	DisableAfter time.Duration
	Metrics      *Metrics // nil records nothing
	Logger       *slog.Logger
	Now          func() time.Time // the clock; time.Now when nil
}

// Activities implements the delivery activities.
type Activities struct {
	store          *models.Store
	guard          *egress.Guard
	client         *http.Client
	schedule       []time.Duration
	attemptTimeout time.Duration
	userAgent      string
	disableAfter   time.Duration
	metrics        *Metrics
	log            *slog.Logger
	now            func() time.Time
}

// New returns the activities with their dependencies.
func New(cfg Config) *Activities {
	a := &Activities{
		store: cfg.Store, guard: cfg.Guard, schedule: cfg.Schedule, attemptTimeout: cfg.AttemptTimeout,
		userAgent: cfg.UserAgent, disableAfter: cfg.DisableAfter, metrics: cfg.Metrics, log: cfg.Logger, now: cfg.Now,
	}
	if a.schedule == nil {
		a.schedule = DefaultSchedule
	}
	if a.attemptTimeout <= 0 {
		a.attemptTimeout = DefaultAttemptTimeout
	}
	if a.userAgent == "" {
		a.userAgent = "streamhooks/dev"
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.guard == nil {
		a.guard = egress.NewGuard(nil)
	}
	// Always the guarded client: an injected one could skip the SSRF guard.
	a.client = egress.NewClient(a.guard, cfg.Resolver, a.attemptTimeout)
	return a
}
