package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/streamhooks/streamhooks/models"
)

// maxIDLength bounds event and asset ids: they end up in workflow ids,
// search attributes and logs.
const maxIDLength = 200

// eventAccepted is the 202 body of the asset-event endpoint.
type eventAccepted struct {
	EventID    string `json:"event_id"`
	WorkflowID string `json:"workflow_id"`
	Sequence   int64  `json:"sequence"`
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
		} else {
			ev.AssetType = assetType(ev.Payload)
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
			return id, models.TruncateUTF8(st, maxIDLength), nil
		}
	}
	return id, "", nil
}

// assetType is the asset's type for the asset_types filter: its "type"
// when that names a known type ("live_stream" and "Live Stream" are
// livestream too), else the one of "video" and "live_stream" that is an
// object; "" when the asset says neither.
func assetType(payload []byte) string {
	var asset map[string]json.RawMessage
	if json.Unmarshal(payload, &asset) != nil {
		return ""
	}
	var t string
	if json.Unmarshal(asset["type"], &t) == nil {
		squashed := strings.NewReplacer("_", "", " ", "", "-", "").Replace(t)
		if c, ok := models.CanonicalAssetType(squashed); ok {
			return c
		}
	}
	isObject := func(key string) bool {
		raw := bytes.TrimSpace(asset[key])
		return len(raw) > 0 && raw[0] == '{'
	}
	switch {
	case isObject("live_stream") && !isObject("video"):
		return models.AssetLivestream
	case isObject("video") && !isObject("live_stream"):
		return models.AssetVideo
	}
	return ""
}

type errString string

func (e errString) Error() string { return string(e) }

// createEvent stores the event and answers 202 once the row is committed
// (service.Events.Accept); a repeated event_id gets the same answer.
func (s *Server) createEvent(c *gin.Context) {
	ev, err := s.parseEvent(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	if s.events == nil {
		s.renderError(c, detail(http.StatusServiceUnavailable, "Event delivery is not configured on this server."))
		return
	}
	stored, err := s.events.Accept(c.Request.Context(), ev)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, eventAccepted{EventID: stored.ID, WorkflowID: stored.WorkflowID, Sequence: stored.Sequence})
}
