package api

import (
	"context"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamhooks/streamhooks/models"
)

// requestMetrics counts API requests by route template (never the raw
// path, which would explode label cardinality), method and status.
func requestMetrics(reg prometheus.Registerer) gin.HandlerFunc {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "streamhooks_api_requests_total", Help: "API requests by route, method and status.",
	}, []string{"route", "method", "status"})
	reg.MustRegister(requests)
	return func(c *gin.Context) {
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
	}
}

// pendingGauge reports deliveries still in progress, read at scrape time.
func pendingGauge(store *models.Store) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "streamhooks_pending_deliveries", Help: "Deliveries not yet succeeded, failed or cancelled.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := store.PendingDeliveries(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
}
