// Package api is the HTTP face of streamhooks: the TPStreams-compatible
// webhook API for customers, the asset-event endpoint for platform services,
// and health endpoints. Handlers are thin: bind, call the store or a use case of
// package service, render.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
)

// DefaultMaxBodyBytes is the request body limit (1 MiB); larger bodies get 413.
const DefaultMaxBodyBytes = 1 << 20

// Config holds what the server needs. Store is required. Without
// Workflows, events and redeliveries answer 503; without Attempter, pings
// do; without Registry there is no /metrics.
type Config struct {
	Store *models.Store
	// Workflows starts redeliveries and recoveries; *service.Starter
	// implements it.
	Workflows service.WorkflowStarter
	// Outbox, when set, is told about each new event (see
	// service.Notifier); without it a stored event waits for the next scan
	// of an outbox elsewhere (the worker role scans every second).
	Outbox service.Notifier
	// Attempter makes ping attempts; *activities.Activities implements it.
	Attempter service.Attempter
	Registry  *prometheus.Registry
	// Guard, when set, refuses webhook URLs whose host is a blocked
	// address literal at create and update time (the dial-time check,
	// after DNS, stays the authority).
	Guard        *egress.Guard
	Logger       *slog.Logger
	MaxBodyBytes int64
	// Ready lists what /readyz checks beyond the database (required).
	Ready []ReadyCheck
}

// Server serves the streamhooks HTTP API.
type Server struct {
	store *models.Store
	// events is nil when event delivery is not configured (no Workflows).
	events     *service.Events
	deliveries *service.Deliveries
	recoveries *service.Recoveries
	guard      *egress.Guard
	log        *slog.Logger
	maxBody    int64
	ready      []ReadyCheck
	engine     *gin.Engine
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{store: cfg.Store, guard: cfg.Guard, log: orDiscard(cfg.Logger), maxBody: cfg.MaxBodyBytes,
		deliveries: &service.Deliveries{Store: cfg.Store, Workflows: cfg.Workflows, Attempter: cfg.Attempter, Logger: cfg.Logger}}
	if cfg.Workflows != nil {
		s.recoveries = &service.Recoveries{Store: cfg.Store, Workflows: cfg.Workflows, Logger: cfg.Logger}
		s.events = &service.Events{Store: cfg.Store, Outbox: cfg.Outbox}
	}
	s.ready = append([]ReadyCheck{{Name: "database", Required: true, Check: cfg.Store.Ping}}, cfg.Ready...)
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	e := gin.New()
	// Every path ends with "/"; a path without it is simply not found,
	// never redirected (a redirected POST would lose its body).
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.Use(s.recovery(), withRequestID)
	if cfg.Registry != nil {
		e.Use(requestMetrics(cfg.Registry))
		e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
		cfg.Registry.MustRegister(pendingGauge(cfg.Store))
	}
	e.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, gin.H{"detail": msgNotFound}) })
	e.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, gin.H{"detail": `Method "` + c.Request.Method + `" not allowed.`})
	})

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/openapi.json", serveOpenAPI)

	org := e.Group("/api/v1/:org", s.requireOrganization)
	org.POST("/webhooks/", s.createWebhook)
	org.GET("/webhooks/", s.listWebhooks)
	org.GET("/webhooks/:id/", s.getWebhook)
	org.PUT("/webhooks/:id/", s.updateWebhook(false))
	org.PATCH("/webhooks/:id/", s.updateWebhook(true))
	org.DELETE("/webhooks/:id/", s.deleteWebhook)
	org.GET("/webhooks/:id/deliveries/", s.listDeliveries)
	org.POST("/webhooks/:id/ping/", s.ping)
	org.POST("/webhooks/:id/rotate-secret/", s.rotateSecret)
	org.POST("/webhooks/:id/recover/", s.recover)
	org.GET("/webhooks/:id/recoveries/:rec/", s.getRecovery)
	org.GET("/deliveries/:delivery/", s.getDelivery)
	org.POST("/deliveries/:delivery/redeliver/", s.redeliver)

	internal := e.Group("/internal/v1", s.requireService)
	internal.POST("/asset-events/", s.createEvent)

	s.engine = e
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

func (s *Server) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// ReadyCheck is one dependency /readyz reports. A Required one that fails
// makes the answer 503; an optional one is reported, not judged (the api
// role accepts events while Temporal is away: the outbox starts them
// later).
type ReadyCheck struct {
	Name     string
	Required bool
	Check    func(ctx context.Context) error
}

// readyCheckTimeout bounds each readiness check.
const readyCheckTimeout = 2 * time.Second

// readyz answers 200 only when every required dependency answers (the
// database always is), so a load balancer stops sending traffic to a
// replica that cannot serve it, and names the state of each.
func (s *Server) readyz(c *gin.Context) {
	code, body := Readiness(c.Request.Context(), s.ready)
	if code != http.StatusOK {
		s.log.WarnContext(c.Request.Context(), "readiness check failed", "checks", fmt.Sprint(body["checks"]))
	}
	c.JSON(code, body)
}

// Readiness runs the checks concurrently and returns the /readyz status and
// body: {"status": "ok" | "unavailable", "checks": {"database": "ok", ...}}.
func Readiness(ctx context.Context, checks []ReadyCheck) (int, gin.H) {
	results := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, ch := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, readyCheckTimeout)
			defer cancel()
			results[i] = ch.Check(cctx)
		}()
	}
	wg.Wait()
	code, status := http.StatusOK, "ok"
	states := gin.H{}
	for i, ch := range checks {
		states[ch.Name] = "ok"
		if results[i] != nil {
			states[ch.Name] = "unavailable"
			if ch.Required {
				code, status = http.StatusServiceUnavailable, "unavailable"
			}
		}
	}
	return code, gin.H{"status": status, "checks": states}
}

const requestIDKey = "streamhooks.requestID"

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// withRequestID takes a sane X-Request-Id from the caller or makes one, and
// echoes it, so a customer's report can be matched with our logs.
func withRequestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if !requestIDPattern.MatchString(id) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(requestIDKey, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

func requestID(c *gin.Context) string { return c.GetString(requestIDKey) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
