package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// fixture is an API over a real store with two organizations.
type fixture struct {
	t       *testing.T
	store   *models.Store
	handler http.Handler
	tokA    string // customer token of org "a"
	tokB    string // customer token of org "b"
	svc     string // service token
}

func newFixture(t *testing.T, s *models.Store) *fixture {
	t.Helper()
	return &fixture{
		t: t, store: s, handler: api.New(api.Config{Store: s}),
		tokA: modelstest.Org(t, s, "a"), tokB: modelstest.Org(t, s, "b"), svc: modelstest.ServiceToken(t, s),
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// do sends a request; body may be a string (sent verbatim) or a value to
// marshal. A JSON content type is set for non-empty bodies unless headers
// say otherwise.
func (f *fixture) do(method, path, token string, body any, headers ...string) response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// create makes a webhook of org a and returns its id.
func (f *fixture) create(url string) string {
	f.t.Helper()
	r := f.do("POST", "/api/v1/a/webhooks/", f.tokA, map[string]string{"url": url, "secret_token": "s3cret"})
	if r.status != http.StatusCreated {
		f.t.Fatalf("create: got %d %s, want 201", r.status, r.body)
	}
	return r.json(f.t)["id"].(string)
}

// snapshot captures every webhook row of both organizations, so a test can
// assert that a rejected request changed nothing.
func (f *fixture) snapshot() string {
	f.t.Helper()
	var all []models.Webhook
	for _, org := range []string{"a", "b"} {
		hooks, _, err := f.store.ListWebhooks(context.Background(), org, models.Page{Limit: 1000})
		if err != nil {
			f.t.Fatal(err)
		}
		all = append(all, hooks...)
	}
	raw, _ := json.Marshal(all)
	return string(raw)
}

func wantJSON(t *testing.T, r response, status int, body string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status: got %d (%s), want %d", r.status, r.body, status)
	}
	if body == "" {
		return
	}
	var got, want any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatalf("bad want %q: %v", body, err)
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("body: got %s, want %s", r.body, body)
	}
}

func TestAuthentication(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		f := newFixture(t, s)
		revoked := modelstest.Org(t, s, "c")
		if err := s.RevokeToken(context.Background(), revoked); err != nil {
			t.Fatal(err)
		}
		const notProvided = `{"detail": "Authentication credentials were not provided."}`
		const invalid = `{"detail": "Invalid token."}`
		tests := []struct {
			name   string
			path   string
			auth   string
			status int
			body   string
		}{
			{"missing header", "/api/v1/a/webhooks/", "", 401, notProvided},
			{"other scheme", "/api/v1/a/webhooks/", "Bearer " + f.tokA, 401, notProvided},
			{"keyword only", "/api/v1/a/webhooks/", "Token", 401, `{"detail": "Invalid token header. No credentials provided."}`},
			{"spaces in token", "/api/v1/a/webhooks/", "Token a b", 401, `{"detail": "Invalid token header. Token string should not contain spaces."}`},
			{"unknown token", "/api/v1/a/webhooks/", "Token shk_nope", 401, invalid},
			{"revoked token", "/api/v1/c/webhooks/", "Token " + revoked, 401, invalid},
			{"anonymous on unknown org", "/api/v1/ghost/webhooks/", "", 401, notProvided},
			{"lower-case keyword", "/api/v1/a/webhooks/", "token " + f.tokA, 200, ""},
			{"upper-case keyword", "/api/v1/a/webhooks/", "TOKEN " + f.tokA, 200, ""},
			{"other org's token", "/api/v1/a/webhooks/", "Token " + f.tokB, 404, ""},
			{"unknown org", "/api/v1/ghost/webhooks/", "Token " + f.tokA, 404, ""},
			{"service token on customer API", "/api/v1/a/webhooks/", "Token " + f.svc, 404, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := f.do("GET", tt.path, "", nil, "Authorization", tt.auth)
				wantJSON(t, r, tt.status, tt.body)
				if tt.status == 401 && r.header.Get("WWW-Authenticate") != "Token" {
					t.Errorf("WWW-Authenticate: got %q, want Token", r.header.Get("WWW-Authenticate"))
				}
				if tt.status == 404 && !strings.Contains(string(r.body), "The requested resource was not found on this server.") {
					t.Errorf("404 body %s lacks the seed sentence", r.body)
				}
			})
		}
	})
}

func TestWebhookCRUD(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		f := newFixture(t, s)
		r := f.do("POST", "/api/v1/a/webhooks/", f.tokA, `{"url": "https://example.com/hook", "secret_token": "s3cret", "id": "x", "organization_id": "b"}`)
		if r.status != 201 {
			t.Fatalf("create: got %d %s, want 201", r.status, r.body)
		}
		if !bytes.HasPrefix(r.body, []byte(`{"url":"https://example.com/hook","secret_token":"s3cret","id":"`)) {
			t.Fatalf("resource key order: got %s, want url, secret_token, id first", r.body)
		}
		created := r.json(t)
		id := created["id"].(string)
		if len(id) != 36 || id[14] != '4' || created["is_active"] != true {
			t.Fatalf("created %v: want a uuid4 id and is_active", created)
		}

		r = f.do("GET", "/api/v1/a/webhooks/"+id+"/", f.tokA, nil)
		wantJSON(t, r, 200, string(mustJSON(t, created)))

		r = f.do("GET", "/api/v1/a/webhooks/", f.tokA, nil)
		list := r.json(t)
		if r.status != 200 || list["count"] != float64(1) || list["next"] != nil || list["previous"] != nil || len(list["results"].([]any)) != 1 {
			t.Fatalf("list: got %d %s", r.status, r.body)
		}

		r = f.do("PUT", "/api/v1/a/webhooks/"+id+"/", f.tokA, map[string]string{"url": "http://example.org/new", "secret_token": "t2"})
		got := r.json(t)
		if r.status != 200 || got["url"] != "http://example.org/new" || got["secret_token"] != "t2" || got["id"] != id {
			t.Fatalf("put: got %d %s", r.status, r.body)
		}
		r = f.do("PATCH", "/api/v1/a/webhooks/"+id+"/", f.tokA, map[string]string{"secret_token": "t3"})
		got = r.json(t)
		if r.status != 200 || got["url"] != "http://example.org/new" || got["secret_token"] != "t3" {
			t.Fatalf("patch: got %d %s", r.status, r.body)
		}
		r = f.do("PATCH", "/api/v1/a/webhooks/"+id+"/", f.tokA, map[string]any{"is_active": false})
		if got = r.json(t); got["is_active"] != false || got["deactivated_reason"] == "" {
			t.Fatalf("patch is_active: got %d %s", r.status, r.body)
		}
		r = f.do("PUT", "/api/v1/a/webhooks/"+id+"/", f.tokA, map[string]any{"url": "http://example.org/new", "secret_token": "t3", "is_active": true})
		if got = r.json(t); got["is_active"] != true || got["deactivated_reason"] != "" {
			t.Fatalf("put is_active: got %d %s", r.status, r.body)
		}

		r = f.do("DELETE", "/api/v1/a/webhooks/"+id+"/", f.tokA, nil)
		if r.status != 204 || len(r.body) != 0 {
			t.Fatalf("delete: got %d %q, want 204 and no body", r.status, r.body)
		}
		wantJSON(t, f.do("GET", "/api/v1/a/webhooks/"+id+"/", f.tokA, nil), 404, `{"detail": "Not found."}`)
		wantJSON(t, f.do("DELETE", "/api/v1/a/webhooks/"+id+"/", f.tokA, nil), 404, `{"detail": "Not found."}`)
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPagination(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		f := newFixture(t, s)
		for range 5 {
			f.create("https://example.com/h")
		}
		const base = "http://example.com/api/v1/a/webhooks/"
		str := func(s string) any { return s }
		tests := []struct {
			name      string
			query     string
			wantN     int
			wantNext  any
			wantPrev  any
			wantFirst int // index into creation order
		}{
			{"default", "", 5, nil, nil, 0},
			{"first page", "?limit=2", 2, str(base + "?limit=2&offset=2"), nil, 0},
			{"middle page", "?limit=2&offset=2", 2, str(base + "?limit=2&offset=4"), str(base + "?limit=2"), 2},
			{"last page", "?limit=2&offset=4", 1, nil, str(base + "?limit=2&offset=2"), 4},
			{"past the end", "?offset=10", 0, nil, str(base + "?limit=50"), 0},
			{"non-numeric limit falls back to default", "?limit=abc", 5, nil, nil, 0},
			{"zero limit falls back to default", "?limit=0", 5, nil, nil, 0},
			{"negative limit falls back to default", "?limit=-3", 5, nil, nil, 0},
			{"negative offset is zero", "?offset=-2", 5, nil, nil, 0},
			{"non-numeric offset is zero", "?offset=x", 5, nil, nil, 0},
			{"huge limit is clamped", "?limit=99999999999999999999", 5, nil, nil, 0},
			{"other params are kept", "?limit=1&foo=bar", 1, str(base + "?foo=bar&limit=1&offset=1"), nil, 0},
		}
		all := f.do("GET", "/api/v1/a/webhooks/", f.tokA, nil).json(t)["results"].([]any)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := f.do("GET", "/api/v1/a/webhooks/"+tt.query, f.tokA, nil)
				m := r.json(t)
				res := m["results"].([]any)
				if r.status != 200 || m["count"] != float64(5) || len(res) != tt.wantN {
					t.Fatalf("got %d with %d results of %v, want 200 with %d of 5", r.status, len(res), m["count"], tt.wantN)
				}
				if m["next"] != tt.wantNext || m["previous"] != tt.wantPrev {
					t.Fatalf("next/previous: got %v / %v, want %v / %v", m["next"], m["previous"], tt.wantNext, tt.wantPrev)
				}
				if tt.wantN > 0 && res[0].(map[string]any)["id"] != all[tt.wantFirst].(map[string]any)["id"] {
					t.Fatalf("first result is not webhook #%d", tt.wantFirst)
				}
			})
		}
	})
}
