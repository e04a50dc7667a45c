package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/workflows"
)

// Attempter makes one delivery attempt synchronously (the ping endpoint);
// *activities.Activities implements it.
type Attempter interface {
	AttemptDelivery(ctx context.Context, in activities.AttemptInput) (activities.AttemptResult, error)
}

// deliveryResource is the JSON of a delivery in lists.
type deliveryResource struct {
	ID                 string     `json:"id"`
	EventID            string     `json:"event_id"`
	EventType          string     `json:"event_type"`
	WebhookID          string     `json:"webhook_id"`
	AssetID            string     `json:"asset_id"`
	AssetStatus        string     `json:"asset_status"`
	State              string     `json:"state"`
	AttemptCount       int        `json:"attempt_count"`
	LastResponseStatus *int       `json:"last_response_status"`
	LastErrorClass     string     `json:"last_error_class"`
	Created            time.Time  `json:"created"`
	Modified           time.Time  `json:"modified"`
	NextAttemptAt      *time.Time `json:"next_attempt_at"`
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
	ErrorClass           string            `json:"error_class"`
	ErrorMessage         string            `json:"error_message"`
}

func toDeliveryResource(v *models.DeliveryView) deliveryResource {
	r := deliveryResource{
		ID: v.ID, EventID: v.EventID, EventType: v.EventKind, WebhookID: v.WebhookID, AssetID: v.AssetID,
		AssetStatus: v.AssetStatus, State: v.State, AttemptCount: v.AttemptCount, LastErrorClass: v.LastErrorClass,
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

var deliveryStates = map[string]bool{
	models.DeliveryPending: true, models.DeliverySucceeded: true, models.DeliveryFailed: true, models.DeliveryCancelled: true,
}

func (s *Server) listDeliveries(c *gin.Context) {
	f := models.DeliveryFilter{State: c.Query("status"), AssetID: c.Query("asset_id")}
	if f.State != "" && !deliveryStates[f.State] {
		s.renderError(c, &httpError{status: http.StatusBadRequest, body: fieldErrors{
			"status": {"Select a valid choice. " + f.State + " is not one of the available choices."},
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

// redeliver starts a new attempt sequence for a finished delivery. The
// delivery is reopened first (so a second request sees it in progress and
// gets 409); if the workflow cannot be started it is closed again and the
// answer is 503.
func (s *Server) redeliver(c *gin.Context) {
	ctx := c.Request.Context()
	org, id := c.Param("org"), c.Param("delivery")
	v, err := s.store.GetDeliveryView(ctx, org, id)
	if err != nil {
		s.renderError(c, err)
		return
	}
	if s.workflows == nil {
		s.renderError(c, detail(http.StatusServiceUnavailable, "Delivery is not configured on this server."))
		return
	}
	previous := v.State
	wfID := workflows.RedeliveryID(id, v.AttemptCount+1)
	if v, err = s.store.ReopenDelivery(ctx, org, id, models.WorkflowRun{WorkflowID: wfID}); err != nil {
		s.renderError(c, err)
		return
	}
	run, err := s.workflows.StartRedelivery(ctx, workflows.RedeliveryStart{
		WorkflowID: wfID, DeliveryID: id, WebhookID: v.WebhookID, OrganizationID: org, AssetID: v.AssetID, AssetStatus: v.AssetStatus,
	})
	if err != nil {
		s.log.WarnContext(ctx, "start redelivery", "deliveryID", id, "requestID", requestID(c), "error", err)
		if ferr := s.store.FinishDelivery(ctx, id, previous); ferr != nil {
			s.log.ErrorContext(ctx, "restore delivery state", "deliveryID", id, "error", ferr)
		}
		s.renderError(c, detail(http.StatusServiceUnavailable, "The redelivery could not be started; try again."))
		return
	}
	if err := s.store.SetDeliveryRun(ctx, id, run); err != nil {
		s.renderError(c, err)
		return
	}
	v.RunID = run.RunID
	c.JSON(http.StatusAccepted, toDeliveryResource(v))
}

// pingResult is the answer of the ping endpoint.
type pingResult struct {
	DeliveryID   string `json:"delivery_id"`
	Success      bool   `json:"success"`
	StatusCode   *int   `json:"status_code"`
	DurationMS   int64  `json:"duration_ms"`
	ErrorClass   string `json:"error_class"`
	ErrorMessage string `json:"error_message"`
	ResponseBody string `json:"response_body"`
}

// ping sends a documented test payload to one webhook now, through the same
// guarded, signed path as deliveries, and answers with the attempt.
func (s *Server) ping(c *gin.Context) {
	ctx := c.Request.Context()
	if s.attempter == nil {
		s.renderError(c, detail(http.StatusServiceUnavailable, "Delivery is not configured on this server."))
		return
	}
	payload, _ := json.Marshal(map[string]string{
		"type": "webhook.ping", "webhook_id": c.Param("id"), "message": "This is a test delivery from streamhooks.",
		"sent_at": time.Now().UTC().Format(time.RFC3339),
	})
	d, err := s.store.CreatePing(ctx, c.Param("org"), c.Param("id"), payload)
	if err != nil {
		s.renderError(c, err)
		return
	}
	res, err := s.attempter.AttemptDelivery(ctx, activities.AttemptInput{DeliveryID: d.ID, Attempt: 1, Final: true, Test: true})
	if err != nil {
		s.renderError(c, err)
		return
	}
	out := pingResult{DeliveryID: d.ID, Success: res.Outcome == activities.OutcomeDelivered, DurationMS: res.DurationMS, ErrorClass: res.ErrorClass}
	if res.StatusCode != 0 {
		out.StatusCode = &res.StatusCode
	}
	if atts, err := s.store.ListAttempts(ctx, d.ID); err == nil && len(atts) == 1 {
		a := toAttemptResource(&atts[0])
		out.ErrorMessage, out.ResponseBody = a.ErrorMessage, a.ResponseBody
	}
	c.JSON(http.StatusOK, out)
}
