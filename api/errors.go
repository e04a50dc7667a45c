package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
)

// Response bodies fixed by the public contract (DESIGN.md §3).
const (
	msgNotProvided  = "Authentication credentials were not provided."
	msgInvalidToken = "Invalid token."
	msgNotFound     = "Not found."
	msgOrgNotFound  = "The requested resource was not found on this server."
	msgForbidden    = "You do not have permission to perform this action."
	msgServerError  = "A server error occurred."
)

// httpError is an error whose status and body the API decides itself
// (authentication, validation, parsing), as opposed to a domain error.
type httpError struct {
	status int
	body   any
}

func (e *httpError) Error() string { return http.StatusText(e.status) }

// detail builds the DRF-style {"detail": "..."} error.
func detail(status int, msg string) *httpError {
	return &httpError{status: status, body: gin.H{"detail": msg}}
}

// fieldErrors collects DRF-style validation errors: field → messages.
type fieldErrors map[string][]string

func (f fieldErrors) add(field, msg string) { f[field] = append(f[field], msg) }

// err returns the 400 for the collected errors, or nil when there are none.
func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &httpError{status: http.StatusBadRequest, body: f}
}

// statusOf maps the domain error vocabulary to HTTP statuses. This is the
// only place that does.
var statusOf = map[string]int{
	models.ENOTFOUND:    http.StatusNotFound,
	models.ECONFLICT:    http.StatusConflict,
	models.EINVALID:     http.StatusBadRequest,
	models.EUNAVAILABLE: http.StatusServiceUnavailable,
}

// renderError writes err as the JSON error body and aborts the request. Only
// internal errors are logged, with the request id; their text never reaches
// the client.
func (s *Server) renderError(c *gin.Context, err error) {
	var he *httpError
	switch {
	case errors.Is(err, service.ErrEventIDTaken):
		he = detail(http.StatusConflict, "This event_id was already used for another organization.")
	case errors.Is(err, service.ErrRecoveryNotStarted):
		he = detail(http.StatusServiceUnavailable, "The recovery could not be started; try again.")
	case errors.Is(err, service.ErrRedeliveryNotStarted):
		he = detail(http.StatusServiceUnavailable, "The redelivery could not be started; try again.")
	}
	if he != nil || errors.As(err, &he) {
		if he.status == http.StatusUnauthorized {
			c.Header("WWW-Authenticate", `Token`)
		}
		c.AbortWithStatusJSON(he.status, he.body)
		return
	}
	code := models.ErrorCode(err)
	status, ok := statusOf[code]
	switch {
	case code == models.ENOTFOUND:
		c.AbortWithStatusJSON(status, gin.H{"detail": msgNotFound})
	case ok:
		if status == http.StatusServiceUnavailable {
			c.Header("Retry-After", "5")
			s.log.WarnContext(c.Request.Context(), "dependency unavailable", "requestID", requestID(c), "error", err)
		}
		c.AbortWithStatusJSON(status, gin.H{"detail": models.ErrorMessage(err)})
	default:
		s.log.ErrorContext(c.Request.Context(), "internal error", "requestID", requestID(c),
			"method", c.Request.Method, "route", c.FullPath(), "error", err)
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"detail": msgServerError})
	}
}

// recovery turns a panic into a logged 500 JSON answer instead of a dropped
// connection.
func (s *Server) recovery() gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		s.log.ErrorContext(c.Request.Context(), "panic", "requestID", requestID(c), "route", c.FullPath(), "panic", rec)
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"detail": msgServerError})
	})
}

// logger returns a discard logger for nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
