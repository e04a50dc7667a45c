package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
)

// webhookResource is the public JSON of a webhook. The first three keys and
// their order are fixed by the TPStreams contract; later keys are additive
// extensions.
type webhookResource struct {
	URL               string    `json:"url"`
	SecretToken       string    `json:"secret_token"`
	ID                string    `json:"id"`
	IsActive          bool      `json:"is_active"`
	DeliveryMode      string    `json:"delivery_mode"`
	DeactivatedReason string    `json:"deactivated_reason"`
	Created           time.Time `json:"created"`
	Modified          time.Time `json:"modified"`
	// DESIGN §10.
	Statuses                []string   `json:"statuses"`
	AssetTypes              []string   `json:"asset_types"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

func toWebhookResource(w *models.Webhook) webhookResource {
	r := webhookResource{
		URL: w.URL, SecretToken: w.SecretToken, ID: w.ID, IsActive: w.IsActive, DeliveryMode: string(w.DeliveryMode),
		DeactivatedReason: w.DeactivatedReason, Created: w.CreatedAt.UTC(), Modified: w.UpdatedAt.UTC(),
		Statuses: orEmpty(w.Statuses), AssetTypes: orEmpty(w.AssetTypes),
	}
	if exp := w.PreviousSecretExpiresAt; exp != nil && w.PreviousSecretToken != "" {
		at := exp.UTC()
		r.PreviousSecretExpiresAt = &at
	}
	return r
}

// orEmpty renders a missing list as [], never null.
func orEmpty(l models.StringList) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// webhookInput reads and validates a webhook body. With partial (PATCH) only
// the fields present are checked; otherwise url and secret_token are
// required. Unknown fields, id and organization_id included, are ignored.
func (s *Server) webhookInput(c *gin.Context, partial bool) (models.WebhookUpdate, error) {
	var upd models.WebhookUpdate
	obj, err := s.readObject(c)
	if err != nil {
		return upd, err
	}
	errs := fieldErrors{}
	if u, ok := stringField(obj, "url", !partial, errs); ok && errs["url"] == nil {
		if maxLength(u, "url", maxURLLength, errs) && !validWebhookURL(u) {
			errs.add("url", msgInvalidURL)
		} else if msg := s.blockedTarget(u); msg != "" {
			errs.add("url", msg)
		}
		upd.URL = &u
	}
	if t, ok := stringField(obj, "secret_token", !partial, errs); ok && errs["secret_token"] == nil {
		maxLength(t, "secret_token", maxSecretLength, errs)
		upd.SecretToken = &t
	}
	if active, ok := boolField(obj, "is_active", errs); ok {
		upd.IsActive = &active
	}
	if m, ok := stringField(obj, "delivery_mode", false, errs); ok && errs["delivery_mode"] == nil {
		mode := models.DeliveryMode(m)
		if !mode.Valid() {
			errs.add("delivery_mode", `"`+m+`" is not a valid choice.`)
		}
		upd.DeliveryMode = &mode
	}
	if l, ok := choiceListField(obj, "statuses", models.CanonicalStatus, errs); ok {
		upd.Statuses = &l
	}
	if l, ok := choiceListField(obj, "asset_types", models.CanonicalAssetType, errs); ok {
		upd.AssetTypes = &l
	}
	return upd, errs.err()
}

// blockedTarget explains why a valid URL's host may not be a target, or
// returns "". Only what needs no DNS is judged here (egress.Guard.CheckURL:
// address literals in any spelling, localhost names and cloud metadata
// names). Other names are not resolved: they are resolved, and every answer
// checked, at every attempt, and a lookup here would only add latency and
// a DNS side channel to the API.
func (s *Server) blockedTarget(raw string) string {
	if s.guard == nil {
		return ""
	}
	var b *egress.BlockedError
	if errors.As(s.guard.CheckURL(raw), &b) {
		return "Enter a URL of a public endpoint: " + b.Error() + "."
	}
	return ""
}

func (s *Server) createWebhook(c *gin.Context) {
	in, err := s.webhookInput(c, false)
	if err != nil {
		s.renderError(c, err)
		return
	}
	w, err := s.store.CreateWebhook(c.Request.Context(), c.Param("org"), in)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusCreated, toWebhookResource(w))
}

func (s *Server) listWebhooks(c *gin.Context) {
	page := pageOf(c)
	hooks, total, err := s.store.ListWebhooks(c.Request.Context(), c.Param("org"), page)
	if err != nil {
		s.renderError(c, err)
		return
	}
	out := make([]webhookResource, len(hooks))
	for i := range hooks {
		out[i] = toWebhookResource(&hooks[i])
	}
	c.JSON(http.StatusOK, paginate(c, page, total, out))
}

func (s *Server) getWebhook(c *gin.Context) {
	w, err := s.store.GetWebhook(c.Request.Context(), c.Param("org"), c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, toWebhookResource(w))
}

// updateWebhook serves PUT (full) and PATCH (partial). The webhook is looked
// up before the body is validated, so another organization's id is a 404
// whatever the body.
func (s *Server) updateWebhook(partial bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		if _, err := s.store.GetWebhook(ctx, c.Param("org"), c.Param("id")); err != nil {
			s.renderError(c, err)
			return
		}
		in, err := s.webhookInput(c, partial)
		if err != nil {
			s.renderError(c, err)
			return
		}
		w, err := s.store.UpdateWebhook(ctx, c.Param("org"), c.Param("id"), in)
		if err != nil {
			s.renderError(c, err)
			return
		}
		c.JSON(http.StatusOK, toWebhookResource(w))
	}
}

func (s *Server) deleteWebhook(c *gin.Context) {
	if err := s.store.DeleteWebhook(c.Request.Context(), c.Param("org"), c.Param("id")); err != nil {
		s.renderError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
