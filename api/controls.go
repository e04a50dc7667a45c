package api

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/streamhooks/streamhooks/models"
)

// Defaults of rotate-secret/ (DESIGN §10).
const (
	defaultSecretGrace = 24 * time.Hour
	maxGraceSeconds    = int64(models.MaxSecretGrace / time.Second)
)

// newWebhookSecret makes a secret the way Svix does: "whsec_" and 24
// random bytes in base64, which Standard Webhooks libraries accept as is.
func newWebhookSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

// rotateSecret serves POST webhooks/<id>/rotate-secret/: a new secret now,
// the old one signing beside it for the grace period.
func (s *Server) rotateSecret(c *gin.Context) {
	ctx := c.Request.Context()
	if _, err := s.store.GetWebhook(ctx, c.Param("org"), c.Param("id")); err != nil {
		s.renderError(c, err)
		return
	}
	obj, err := s.readObject(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	errs := fieldErrors{}
	secret := newWebhookSecret()
	if t, ok := stringField(obj, "secret_token", false, errs); ok && errs["secret_token"] == nil {
		if maxLength(t, "secret_token", maxSecretLength, errs) {
			secret = t
		}
	}
	grace := defaultSecretGrace
	if n, ok := intField(obj, "grace_period_seconds", 0, maxGraceSeconds, errs); ok {
		grace = time.Duration(n) * time.Second
	}
	if err := errs.err(); err != nil {
		s.renderError(c, err)
		return
	}
	w, err := s.store.RotateSecret(ctx, c.Param("org"), c.Param("id"), secret, grace)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, toWebhookResource(w))
}

// recoveryResource is the body of a recovery (DESIGN §10).
type recoveryResource struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Total       int64  `json:"total"`
	Redelivered int64  `json:"redelivered"`
	Succeeded   int64  `json:"succeeded"`
	Failed      int64  `json:"failed"`
}

// recoveryStarted is the 202 of recover/.
type recoveryStarted struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	State      string `json:"state"`
}

// recover serves POST webhooks/<id>/recover/.
func (s *Server) recover(c *gin.Context) {
	ctx := c.Request.Context()
	if _, err := s.store.GetWebhook(ctx, c.Param("org"), c.Param("id")); err != nil {
		s.renderError(c, err)
		return
	}
	obj, err := s.readObject(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	errs := fieldErrors{}
	since, _ := timeField(obj, "since", true, errs)
	until, hasUntil := timeField(obj, "until", false, errs)
	if hasUntil && errs["since"] == nil && errs["until"] == nil && !until.After(since) {
		errs.add("until", "Ensure this value is later than since.")
	}
	if err := errs.err(); err != nil {
		s.renderError(c, err)
		return
	}
	if s.recoveries == nil {
		s.renderError(c, detail(http.StatusServiceUnavailable, "Recovery is not configured on this server."))
		return
	}
	var untilPtr *time.Time
	if hasUntil {
		untilPtr = &until
	}
	rec, err := s.recoveries.Recover(ctx, c.Param("org"), c.Param("id"), since, untilPtr)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, recoveryStarted{ID: rec.ID, WorkflowID: rec.WorkflowID, State: rec.State})
}

// getRecovery serves GET webhooks/<id>/recoveries/<rec_id>/.
func (s *Server) getRecovery(c *gin.Context) {
	ctx := c.Request.Context()
	w, err := s.store.GetWebhook(ctx, c.Param("org"), c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	r, err := s.store.GetRecovery(ctx, c.Param("org"), w.ID, c.Param("rec"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, recoveryResource{ID: r.ID, State: r.State, Total: r.Total, Redelivered: r.Redelivered, Succeeded: r.Succeeded, Failed: r.Failed})
}

// intField reads an optional JSON integer within [lo, hi], with DRF's
// IntegerField messages.
func intField(obj map[string]json.RawMessage, name string, lo, hi int64, errs fieldErrors) (int64, bool) {
	raw, ok := obj[name]
	if !ok {
		return 0, false
	}
	if isNull(raw) {
		errs.add(name, msgNull)
		return 0, false
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		errs.add(name, "A valid integer is required.")
		return 0, false
	}
	switch {
	case n < lo:
		errs.add(name, "Ensure this value is greater than or equal to "+itoa(lo)+".")
		return 0, false
	case n > hi:
		errs.add(name, "Ensure this value is less than or equal to "+itoa(hi)+".")
		return 0, false
	}
	return n, true
}

// timeField reads an RFC 3339 timestamp, with DRF's DateTimeField message.
func timeField(obj map[string]json.RawMessage, name string, required bool, errs fieldErrors) (time.Time, bool) {
	v, ok := stringField(obj, name, required, errs)
	if !ok || errs[name] != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		errs.add(name, "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].")
		return time.Time{}, false
	}
	return t.UTC(), true
}
