package activities

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamhooks/streamhooks/models"
)

// Metrics are the delivery metrics. A nil *Metrics records nothing.
type Metrics struct {
	deliveries   *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	attemptSecs  prometheus.Histogram
	firstAttempt prometheus.Histogram
}

// NewMetrics registers the delivery metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamhooks_deliveries_total", Help: "Deliveries that reached a final state, by outcome.",
		}, []string{"outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamhooks_delivery_attempts_total", Help: "Delivery attempts by result class (2xx..5xx, or the error class).",
		}, []string{"class"}),
		attemptSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamhooks_delivery_attempt_duration_seconds", Help: "Duration of one HTTP delivery attempt.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
		firstAttempt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "streamhooks_event_to_first_attempt_seconds", Help: "Time from an event's acceptance to the start of its first delivery attempt.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
	}
	reg.MustRegister(m.deliveries, m.attempts, m.attemptSecs, m.firstAttempt)
	return m
}

// attempt records one attempt and, when final, its delivery's outcome.
func (m *Metrics) attempt(row *models.DeliveryAttempt, state models.DeliveryState, receivedAt time.Time) {
	if m == nil {
		return
	}
	class := string(row.ErrorClass)
	if row.ResponseStatus != 0 {
		class = strconv.Itoa(row.ResponseStatus/100) + "xx"
	}
	m.attempts.WithLabelValues(class).Inc()
	m.attemptSecs.Observe(row.FinishedAt.Sub(row.StartedAt).Seconds())
	if row.AttemptNumber == 1 && !receivedAt.IsZero() {
		m.firstAttempt.Observe(row.StartedAt.Sub(receivedAt).Seconds())
	}
	if state != models.DeliveryPending {
		m.deliveries.WithLabelValues(string(state)).Inc()
	}
}

// finished records a delivery that ended without an attempt (cancelled).
func (m *Metrics) finished(state models.DeliveryState) {
	if m != nil {
		m.deliveries.WithLabelValues(string(state)).Inc()
	}
}
