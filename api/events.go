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

// Workflows names and starts delivery workflows; *workflows.Starter
// implements it.
type Workflows interface {
	WorkflowID(eventID string) string
	StartRedelivery(ctx context.Context, r workflows.RedeliveryStart) (models.WorkflowRun, error)
}

// Outbox is told about each committed event so its workflow starts at
// once; *service.Outbox implements it. Notify must not block: the outbox's
// scan is the guarantee, the notification only saves its delay.
type Outbox interface {
	Notify(ev models.AssetEvent)
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

// createEvent stores the event and answers 202 once the row is committed.
// Its workflow is started by the outbox, told at once and scanning as the
// guarantee, so a slow or unreachable Temporal never holds the caller and
// is no reason to refuse an event; an unreachable database is (503). A
// repeated event_id stores nothing and gets the same answer.
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
	if stored.WorkflowStartedAt == nil && s.outbox != nil {
		s.outbox.Notify(*stored)
	}
	c.JSON(http.StatusAccepted, eventAccepted{EventID: stored.ID, WorkflowID: stored.WorkflowID})
}
