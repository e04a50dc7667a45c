// Package api is the HTTP face of streamhooks: the TPStreams-compatible
// webhook API for customers, the asset-event endpoint for platform services,
// and health endpoints. Handlers are thin: bind, call the store, render.
package api

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/models"
)

// DefaultMaxBodyBytes is the request body limit (1 MiB); larger bodies get 413.
const DefaultMaxBodyBytes = 1 << 20

// Config holds what the server needs. Store is required. Without
// Workflows, events and redeliveries answer 503; without Attempter, pings
// do; without Registry there is no /metrics.
type Config struct {
	Store     *models.Store
	Workflows Workflows
	Attempter Attempter
	Registry  *prometheus.Registry
	// Guard, when set, refuses webhook URLs whose host is a blocked
	// address literal at create and update time (the dial-time check,
	// after DNS, stays the authority).
	Guard        *activities.Guard
	Logger       *slog.Logger
	MaxBodyBytes int64
}

// Server serves the streamhooks HTTP API.
type Server struct {
	store     *models.Store
	workflows Workflows
	attempter Attempter
	guard     *activities.Guard
	log       *slog.Logger
	maxBody   int64
	engine    *gin.Engine
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{store: cfg.Store, workflows: cfg.Workflows, attempter: cfg.Attempter, guard: cfg.Guard, log: orDiscard(cfg.Logger), maxBody: cfg.MaxBodyBytes}
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

// readyz answers 200 only when the database answers, so a load balancer
// stops sending traffic to a replica that cannot serve it.
func (s *Server) readyz(c *gin.Context) {
	if err := s.store.Ping(c.Request.Context()); err != nil {
		s.log.WarnContext(c.Request.Context(), "readiness check failed", "error", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "detail": "The database is unreachable."})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
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
