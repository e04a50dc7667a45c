package api_test

import (
	"strings"
	"testing"

	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/internal/ssrfcases"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// TestSSRFTableAtCreate runs the shared table of target forms (the one the
// dial-time test in package egress runs) through POST and PATCH.
// Address literals in any spelling, localhost names and cloud metadata
// names are refused with a url field error and change nothing. Other names
// are accepted: the API does not resolve DNS (an answer now says nothing
// about the answer at delivery time), so they are judged, with every
// answer checked, at each attempt; redirects are never followed.
func TestSSRFTableAtCreate(t *testing.T) {
	s := modelstest.SQLite(t)
	f := newFixture(t, s)
	f.handler = api.New(api.Config{Store: s, Guard: egress.NewGuard(nil)})
	id := f.create("https://example.com/keep")
	refused := 0
	for _, c := range ssrfcases.All {
		if c.CreateRefused() {
			refused++
		}
	}
	t.Logf("%d target forms at create time: %d refused, %d left to the dial-time check", len(ssrfcases.All), refused, len(ssrfcases.All)-refused)
	for _, c := range ssrfcases.All {
		t.Run(c.Name(), func(t *testing.T) {
			url := c.URL("8443")
			before := f.snapshot()
			post := f.do("POST", "/api/v1/a/webhooks/", f.tokA, map[string]string{"url": url, "secret_token": "s"})
			patch := f.do("PATCH", "/api/v1/a/webhooks/"+id+"/", f.tokA, map[string]string{"url": url})
			if !c.CreateRefused() {
				wantJSON(t, post, 201, "")
				wantJSON(t, patch, 200, "")
				if got := post.json(t)["url"]; got != url {
					t.Fatalf("stored url %v, want %s", got, url)
				}
				return
			}
			for _, r := range []response{post, patch} {
				wantJSON(t, r, 400, "")
				body := r.json(t)
				msgs, _ := body["url"].([]any)
				if len(body) != 1 || len(msgs) != 1 {
					t.Fatalf("body %s, want exactly one url error", r.body)
				}
				msg, _ := msgs[0].(string)
				if !strings.HasPrefix(msg, "Enter a URL of a public endpoint: destination ") || !strings.Contains(msg, " is not allowed (") || !strings.HasSuffix(msg, ").") {
					t.Fatalf("url error %q, want the customer-safe public-endpoint message", msg)
				}
			}
			if after := f.snapshot(); after != before {
				t.Fatalf("a refused URL changed the database:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}
