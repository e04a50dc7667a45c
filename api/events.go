package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/workflows"
)

// maxIDLength bounds event and asset ids: they end up in workflow ids,
// search attributes and logs.
const maxIDLength = 200

// Workflows starts delivery workflows; *workflows.Starter implements it.
// Starting the same event twice must be harmless (the workflow id is
// derived from the event id).
type Workflows interface {
	WorkflowID(eventID string) string
	StartEvent(ctx context.Context, ev *models.AssetEvent) error
	StartRedelivery(ctx context.Context, r workflows.RedeliveryStart) (models.WorkflowRun, error)
}

// eventAccepted is the 202 body of the asset-event endpoint.
type eventAccepted struct {
	EventID    string `json:"event_id"`
	WorkflowID string `json:"workflow_id"`
}

// parseEvent validates an asset-event body. The asset's bytes are kept
// exactly as received: they are what every endpoint will get.
func (s *Server) parseEvent(c *gin.Context) (*models.AssetEvent, error) {
	obj, err := s.readObject(c)
	if err != nil {
		return nil, err
	}
	errs := fieldErrors{}
	ev := &models.AssetEvent{}
	ev.OrganizationID, _ = stringField(obj, "organization_id", true, errs)
	if id, ok := stringField(obj, "event_id", false, errs); ok && errs["event_id"] == nil {
		if maxLength(id, "event_id", maxIDLength, errs) {
			ev.ID = id
		}
	}
	raw, ok := obj["asset"]
	switch {
	case !ok:
		errs.add("asset", msgRequired)
	case isNull(raw):
		errs.add("asset", msgNull)
	default:
		ev.Payload = bytes.TrimSpace(raw)
		ev.AssetID, ev.AssetStatus, err = assetFields(ev.Payload)
		if err != nil {
			errs.add("asset", err.Error())
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	if ev.ID == "" {
		ev.ID = uuid.NewString()
	}
	return ev, nil
}

// assetFields extracts the asset id (required, a non-empty string) and the
// status used for search: video.status, else live_stream.status.
func assetFields(payload []byte) (id, status string, err error) {
	if payload[0] != '{' {
		return "", "", errString("Expected a JSON object.")
	}
	// A map, not a struct: encoding/json matches struct fields
	// case-insensitively, and "ID" is not "id".
	var asset map[string]json.RawMessage
	if err := json.Unmarshal(payload, &asset); err != nil {
		return "", "", errString("Expected a JSON object.")
	}
	if json.Unmarshal(asset["id"], &id) != nil || strings.TrimSpace(id) == "" {
		return "", "", errString(`The asset needs a non-empty string "id".`)
	}
	if utf8.RuneCountInString(id) > maxIDLength || hasControl(id) { // characters, like event_id
		return "", "", errString(`The asset "id" must be at most 200 printable characters.`)
	}
	for _, key := range []string{"video", "live_stream"} {
		var sub map[string]json.RawMessage
		var st string
		if json.Unmarshal(asset[key], &sub) == nil && json.Unmarshal(sub["status"], &st) == nil && st != "" && !hasControl(st) {
			return id, truncate(st, maxIDLength), nil
		}
	}
	return id, "", nil
}

// truncate cuts s to at most n bytes, on a character boundary: a cut
// character would be invalid UTF-8, which PostgreSQL refuses in a text column.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

type errString string

func (e errString) Error() string { return string(e) }

// createEvent stores the event, then starts its workflow. The row is
// committed first, so a crash between the two leaves an event the relay
// starts later; a failed start answers 503 and the caller's retry (same
// event_id) starts it without storing anything twice.
func (s *Server) createEvent(c *gin.Context) {
	ev, err := s.parseEvent(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	ctx := c.Request.Context()
	if _, err := s.store.GetOrganization(ctx, ev.OrganizationID); err != nil {
		s.renderError(c, err)
		return
	}
	if s.workflows == nil {
		s.renderError(c, detail(http.StatusServiceUnavailable, "Event delivery is not configured on this server."))
		return
	}
	ev.WorkflowID = s.workflows.WorkflowID(ev.ID)
	stored, _, err := s.store.CreateEvent(ctx, ev)
	if err != nil {
		s.renderError(c, err)
		return
	}
	if stored.OrganizationID != ev.OrganizationID {
		s.renderError(c, detail(http.StatusConflict, "This event_id was already used for another organization."))
		return
	}
	if stored.WorkflowStartedAt == nil {
		if err := s.workflows.StartEvent(ctx, stored); err != nil {
			s.log.WarnContext(ctx, "start event workflow", "eventID", stored.ID, "requestID", requestID(c), "error", err)
			c.Header("Retry-After", "5")
			s.renderError(c, detail(http.StatusServiceUnavailable, "The event is stored but its delivery could not be started yet; retry with the same event_id."))
			return
		}
		if err := s.store.MarkEventStarted(ctx, stored.ID); err != nil {
			// The workflow runs; the relay will find it already started.
			s.log.WarnContext(ctx, "mark event started", "eventID", stored.ID, "error", err)
		}
	}
	c.JSON(http.StatusAccepted, eventAccepted{EventID: stored.ID, WorkflowID: stored.WorkflowID})
}
