package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/service"
)

// deliveryResource is the JSON of a delivery in lists.
type deliveryResource struct {
	ID                 string               `json:"id"`
	EventID            string               `json:"event_id"`
	EventType          string               `json:"event_type"`
	WebhookID          string               `json:"webhook_id"`
	AssetID            string               `json:"asset_id"`
	AssetStatus        string               `json:"asset_status"`
	Sequence           int64                `json:"sequence"`
	State              models.DeliveryState `json:"state"`
	AttemptCount       int                  `json:"attempt_count"`
	LastResponseStatus *int                 `json:"last_response_status"`
	LastErrorClass     models.ErrorClass    `json:"last_error_class"`
	Created            time.Time            `json:"created"`
	Modified           time.Time            `json:"modified"`
	NextAttemptAt      *time.Time           `json:"next_attempt_at"`
}

// deliveryDetail adds the Temporal run and every attempt.
type deliveryDetail struct {
	deliveryResource
	WorkflowID string            `json:"workflow_id"`
	RunID      string            `json:"run_id"`
	Attempts   []attemptResource `json:"attempts"`
}

type attemptResource struct {
	Attempt              int               `json:"attempt"`
	Manual               bool              `json:"manual"`
	StartedAt            time.Time         `json:"started_at"`
	DurationMS           int64             `json:"duration_ms"`
	RequestURL           string            `json:"request_url"`
	RequestHeaders       map[string]string `json:"request_headers"`
	ResponseStatus       *int              `json:"response_status"`
	ResponseHeaders      map[string]string `json:"response_headers"`
	ResponseBody         string            `json:"response_body"`
	ResponseBodyEncoding string            `json:"response_body_encoding"`
	ErrorClass           models.ErrorClass `json:"error_class"`
	ErrorMessage         string            `json:"error_message"`
}

func toDeliveryResource(v *models.DeliveryView) deliveryResource {
	r := deliveryResource{
		ID: v.ID, EventID: v.EventID, EventType: v.EventKind, WebhookID: v.WebhookID, AssetID: v.AssetID,
		AssetStatus: v.AssetStatus, Sequence: v.Sequence, State: v.State, AttemptCount: v.AttemptCount, LastErrorClass: v.LastErrorClass,
		Created: v.CreatedAt.UTC(), Modified: v.UpdatedAt.UTC(),
	}
	if v.LastStatus != 0 {
		r.LastResponseStatus = &v.LastStatus
	}
	if v.State == models.DeliveryPending && v.NextAttemptAt != nil {
		t := v.NextAttemptAt.UTC()
		r.NextAttemptAt = &t
	}
	return r
}

func toAttemptResource(a *models.DeliveryAttempt) attemptResource {
	r := attemptResource{
		Attempt: a.AttemptNumber, Manual: a.Manual, StartedAt: a.StartedAt.UTC(), DurationMS: a.DurationMS,
		RequestURL: a.RequestURL, RequestHeaders: headerMap(a.RequestHeaders), ResponseHeaders: headerMap(a.ResponseHeaders),
		ErrorClass: a.ErrorClass, ErrorMessage: a.ErrorMessage, ResponseBodyEncoding: "text",
	}
	if a.ResponseStatus != 0 {
		r.ResponseStatus = &a.ResponseStatus
	}
	if utf8.Valid(a.ResponseBody) {
		r.ResponseBody = string(a.ResponseBody)
	} else {
		r.ResponseBody, r.ResponseBodyEncoding = base64.StdEncoding.EncodeToString(a.ResponseBody), "base64"
	}
	return r
}

func headerMap(raw string) map[string]string {
	m := map[string]string{}
	_ = json.Unmarshal([]byte(raw), &m)
	return m
}

var deliveryStates = map[models.DeliveryState]bool{
	models.DeliveryPending: true, models.DeliverySucceeded: true, models.DeliveryFailed: true, models.DeliveryCancelled: true,
	models.DeliverySuperseded: true,
}

func (s *Server) listDeliveries(c *gin.Context) {
	f := models.DeliveryFilter{State: models.DeliveryState(c.Query("status")), AssetID: c.Query("asset_id")}
	if f.State != "" && !deliveryStates[f.State] {
		s.renderError(c, &httpError{status: http.StatusBadRequest, body: fieldErrors{
			"status": {"Select a valid choice. " + string(f.State) + " is not one of the available choices."},
		}})
		return
	}
	// No asset id holds a control character or invalid UTF-8 (assetFields
	// refuses them), and PostgreSQL refuses NUL and invalid UTF-8 in a
	// query parameter (a 500): refuse the filter like a body field.
	if hasControl(f.AssetID) {
		s.renderError(c, &httpError{status: http.StatusBadRequest, body: fieldErrors{"asset_id": {msgControlChar}}})
		return
	}
	page := pageOf(c)
	views, total, err := s.store.ListWebhookDeliveries(c.Request.Context(), c.Param("org"), c.Param("id"), f, page)
	if err != nil {
		s.renderError(c, err)
		return
	}
	out := make([]deliveryResource, len(views))
	for i := range views {
		out[i] = toDeliveryResource(&views[i])
	}
	c.JSON(http.StatusOK, paginate(c, page, total, out))
}

func (s *Server) deliveryDetail(ctx context.Context, v *models.DeliveryView) (deliveryDetail, error) {
	atts, err := s.store.ListAttempts(ctx, v.ID)
	if err != nil {
		return deliveryDetail{}, err
	}
	d := deliveryDetail{deliveryResource: toDeliveryResource(v), WorkflowID: v.WorkflowID, RunID: v.RunID, Attempts: make([]attemptResource, len(atts))}
	for i := range atts {
		d.Attempts[i] = toAttemptResource(&atts[i])
	}
	return d, nil
}

func (s *Server) getDelivery(c *gin.Context) {
	v, err := s.store.GetDeliveryView(c.Request.Context(), c.Param("org"), c.Param("delivery"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	d, err := s.deliveryDetail(c.Request.Context(), v)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, d)
}

// redeliver starts a new attempt sequence for a finished delivery
// (service.Deliveries.Redeliver): 202 with the reopened delivery, 409 while
// it is in progress, 503 when the workflow could not be started.
func (s *Server) redeliver(c *gin.Context) {
	if s.deliveries.Workflows == nil {
		s.renderError(c, detail(http.StatusServiceUnavailable, "Delivery is not configured on this server."))
		return
	}
	// The body is optional: {"force": true} sends a delivery even when a
	// newer event of its asset was sent to the webhook (DESIGN §9).
	obj, err := s.readObject(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	errs := fieldErrors{}
	force, _ := boolField(obj, "force", errs)
	if err := errs.err(); err != nil {
		s.renderError(c, err)
		return
	}
	ctx := c.Request.Context()
	v, err := s.deliveries.Redeliver(ctx, c.Param("org"), c.Param("delivery"), force)
	if errors.Is(err, service.ErrRedeliveryNotStarted) {
		s.log.WarnContext(ctx, "start redelivery", "deliveryID", c.Param("delivery"), "requestID", requestID(c), "error", err)
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, toDeliveryResource(v))
}

// pingResult is the answer of the ping endpoint.
type pingResult struct {
	DeliveryID   string            `json:"delivery_id"`
	Success      bool              `json:"success"`
	StatusCode   *int              `json:"status_code"`
	DurationMS   int64             `json:"duration_ms"`
	ErrorClass   models.ErrorClass `json:"error_class"`
	ErrorMessage string            `json:"error_message"`
	ResponseBody string            `json:"response_body"`
}

// ping sends a documented test payload to one webhook now
// (service.Deliveries.Ping) and answers with the attempt.
func (s *Server) ping(c *gin.Context) {
	if s.deliveries.Attempter == nil {
		s.renderError(c, detail(http.StatusServiceUnavailable, "Delivery is not configured on this server."))
		return
	}
	res, err := s.deliveries.Ping(c.Request.Context(), c.Param("org"), c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	out := pingResult{DeliveryID: res.DeliveryID, Success: res.Delivered, DurationMS: res.DurationMS, ErrorClass: res.ErrorClass}
	if res.StatusCode != 0 {
		out.StatusCode = &res.StatusCode
	}
	if res.Attempt != nil {
		a := toAttemptResource(res.Attempt)
		out.ErrorMessage, out.ResponseBody = a.ErrorMessage, a.ResponseBody
	}
	c.JSON(http.StatusOK, out)
}
