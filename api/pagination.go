package api

import (
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/streamhooks/streamhooks/models"
)

// Pagination follows DRF's LimitOffsetPagination: a missing, non-numeric,
// zero or negative limit falls back to the default; a limit above the
// maximum is clamped; a missing, non-numeric or negative offset is 0. Bad
// values are never an error, as in DRF.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// pageOf reads ?limit= and ?offset=.
func pageOf(c *gin.Context) models.Page {
	p := models.Page{Limit: defaultLimit}
	if n, err := strconv.Atoi(c.Query("limit")); err == nil && n > 0 {
		p.Limit = min(n, maxLimit)
	}
	if n, err := strconv.Atoi(c.Query("offset")); err == nil && n > 0 {
		p.Offset = n
	}
	return p
}

// listEnvelope is the paginated list body: {"count", "next", "previous", "results"}.
type listEnvelope[T any] struct {
	Count    int64   `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []T     `json:"results"`
}

// paginate builds the envelope with absolute next/previous URLs that keep
// every other query parameter of the request.
func paginate[T any](c *gin.Context, page models.Page, total int64, results []T) listEnvelope[T] {
	env := listEnvelope[T]{Count: total, Results: results}
	if env.Results == nil {
		env.Results = []T{}
	}
	if int64(page.Offset) < total-int64(page.Limit) { // not Offset+Limit: a huge offset would overflow
		next := pageURL(c, page.Limit, page.Offset+page.Limit)
		env.Next = &next
	}
	if page.Offset > 0 {
		prev := pageURL(c, page.Limit, max(page.Offset-page.Limit, 0))
		env.Previous = &prev
	}
	return env
}

func pageURL(c *gin.Context, limit, offset int) string {
	u := url.URL{Scheme: "http", Host: c.Request.Host, Path: c.Request.URL.Path}
	if c.Request.TLS != nil {
		u.Scheme = "https"
	}
	q := c.Request.URL.Query()
	q.Set("limit", strconv.Itoa(limit))
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	} else {
		q.Del("offset") // DRF drops offset from the first page's link
	}
	u.RawQuery = q.Encode()
	return u.String()
}
