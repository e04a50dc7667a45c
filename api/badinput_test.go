package api_test

import (
	"strings"
	"testing"

	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// TestBadInput sends every kind of bad webhook body and path and checks the
// documented 4xx answer and that nothing changed.
func TestBadInput(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		f := newFixture(t, s)
		id := f.create("https://example.com/keep")
		one := "/api/v1/a/webhooks/" + id + "/"
		const list = "/api/v1/a/webhooks/"
		const required = `["This field is required."]`
		const validURL = `["Enter a valid URL."]`
		const control = `["This field may not contain control characters (such as CR, LF, tab or NUL)."]`
		type tc struct {
			name   string
			method string
			path   string
			body   any
			status int
			want   string
		}
		tests := []tc{
			{"malformed JSON", "POST", list, `{"url": `, 400, ""},
			{"trailing garbage", "POST", list, `{"url": "https://x.example", "secret_token": "s"} x`, 400, ""},
			{"array body", "POST", list, `[1, 2]`, 400, `{"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}`},
			{"string body", "POST", list, `"hi"`, 400, `{"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}`},
			{"number body", "POST", list, `42`, 400, `{"non_field_errors": ["Invalid data. Expected a dictionary, but got int."]}`},
			{"null body", "POST", list, `null`, 400, `{"non_field_errors": ["Invalid data. Expected a dictionary, but got NoneType."]}`},
			{"empty body", "POST", list, ``, 400, `{"url": ` + required + `, "secret_token": ` + required + `}`},
			{"empty object", "POST", list, `{}`, 400, `{"url": ` + required + `, "secret_token": ` + required + `}`},
			{"missing url", "POST", list, `{"secret_token": "s"}`, 400, `{"url": ` + required + `}`},
			{"missing secret", "POST", list, `{"url": "https://x.example"}`, 400, `{"secret_token": ` + required + `}`},
			{"empty url", "POST", list, `{"url": "", "secret_token": "s"}`, 400, `{"url": ["This field may not be blank."]}`},
			{"blank secret", "POST", list, `{"url": "https://x.example", "secret_token": "   "}`, 400, `{"secret_token": ["This field may not be blank."]}`},
			{"null url", "POST", list, `{"url": null, "secret_token": "s"}`, 400, `{"url": ["This field may not be null."]}`},
			{"null secret", "POST", list, `{"url": "https://x.example", "secret_token": null}`, 400, `{"secret_token": ["This field may not be null."]}`},
			{"numeric url", "POST", list, `{"url": 5, "secret_token": "s"}`, 400, `{"url": ["Not a valid string."]}`},
			{"object secret", "POST", list, `{"url": "https://x.example", "secret_token": {"a": 1}}`, 400, `{"secret_token": ["Not a valid string."]}`},
			{"bool url", "POST", list, `{"url": true, "secret_token": "s"}`, 400, `{"url": ["Not a valid string."]}`},
			{"ftp scheme", "POST", list, `{"url": "ftp://x.example/f", "secret_token": "s"}`, 400, `{"url": ` + validURL + `}`},
			{"javascript scheme", "POST", list, `{"url": "javascript:alert(1)", "secret_token": "s"}`, 400, `{"url": ` + validURL + `}`},
			{"no scheme", "POST", list, `{"url": "example.com/x", "secret_token": "s"}`, 400, `{"url": ` + validURL + `}`},
			{"no host", "POST", list, `{"url": "http://", "secret_token": "s"}`, 400, `{"url": ` + validURL + `}`},
			{"path only", "POST", list, `{"url": "/hooks", "secret_token": "s"}`, 400, `{"url": ` + validURL + `}`},
			{"bad port", "POST", list, `{"url": "http://x.example:99999/", "secret_token": "s"}`, 400, `{"url": ` + validURL + `}`},
			{"space in host", "POST", list, `{"url": "http://x .example/", "secret_token": "s"}`, 400, `{"url": ` + validURL + `}`},
			{"underscore host", "POST", list, `{"url": "http://x_y.example/", "secret_token": "s"}`, 400, `{"url": ` + validURL + `}`},
			{"CRLF in url", "POST", list, `{"url": "https://x.example/\r\nX-Evil: 1", "secret_token": "s"}`, 400, `{"url": ` + control + `}`},
			{"LF in secret", "POST", list, `{"url": "https://x.example", "secret_token": "a\nb"}`, 400, `{"secret_token": ` + control + `}`},
			{"CR in secret", "POST", list, `{"url": "https://x.example", "secret_token": "a\rb"}`, 400, `{"secret_token": ` + control + `}`},
			{"NUL in secret", "POST", list, `{"url": "https://x.example", "secret_token": "a\u0000b"}`, 400, `{"secret_token": ` + control + `}`},
			{"NUL in url", "POST", list, `{"url": "https://x.example/\u0000", "secret_token": "s"}`, 400, `{"url": ` + control + `}`},
			{"10 KB url", "POST", list, `{"url": "https://x.example/` + strings.Repeat("a", 10240) + `", "secret_token": "s"}`, 400, `{"url": ["Ensure this field has no more than 2048 characters."]}`},
			{"long secret", "POST", list, `{"url": "https://x.example", "secret_token": "` + strings.Repeat("k", 256) + `"}`, 400, `{"secret_token": ["Ensure this field has no more than 255 characters."]}`},
			{"invalid UTF-8", "POST", list, "{\"url\": \"https://x.example\", \"secret_token\": \"\xff\xfe\"}", 400, `{"detail": "JSON parse error - the body is not valid UTF-8"}`},
			{"text/plain body", "POST", list, nil, 415, `{"detail": "Unsupported media type \"text/plain\" in request."}`},
			{"form body", "POST", list, nil, 415, `{"detail": "Unsupported media type \"application/x-www-form-urlencoded\" in request."}`},
			{"oversized body", "POST", list, `{"url": "https://x.example", "secret_token": "` + strings.Repeat("k", 1<<20) + `"}`, 413, `{"detail": "Request body is too large: the limit is 1048576 bytes."}`},
			{"is_active not bool", "PATCH", one, `{"is_active": "yes"}`, 400, `{"is_active": ["Must be a valid boolean."]}`},
			{"PUT without secret", "PUT", one, `{"url": "https://x.example"}`, 400, `{"secret_token": ` + required + `}`},
			{"PUT malformed JSON", "PUT", one, `{`, 400, ""},
			{"PATCH bad url", "PATCH", one, `{"url": "nope"}`, 400, `{"url": ` + validURL + `}`},
			{"PATCH null secret", "PATCH", one, `{"secret_token": null}`, 400, `{"secret_token": ["This field may not be null."]}`},
			{"PATCH array", "PATCH", one, `[]`, 400, `{"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}`},
		}
		for _, m := range []string{"GET", "PUT", "PATCH", "DELETE"} {
			for _, bad := range []string{"not-a-uuid", "123", id + "x", strings.ToUpper("zz" + id[2:]), "00000000-0000-0000-0000-000000000000"} {
				tests = append(tests, tc{"non-uuid or unknown id " + m + " " + bad, m, "/api/v1/a/webhooks/" + bad + "/", `{"url": "https://x.example", "secret_token": "s"}`, 404, `{"detail": "Not found."}`})
			}
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := f.snapshot()
				var r response
				switch tt.name {
				case "text/plain body":
					r = f.do(tt.method, tt.path, f.tokA, `url=x`, "Content-Type", "text/plain")
				case "form body":
					r = f.do(tt.method, tt.path, f.tokA, `url=x&secret_token=y`, "Content-Type", "application/x-www-form-urlencoded")
				default:
					r = f.do(tt.method, tt.path, f.tokA, tt.body)
				}
				wantJSON(t, r, tt.status, tt.want)
				if tt.want == "" && !strings.HasPrefix(r.json(t)["detail"].(string), "JSON parse error - ") {
					t.Fatalf("body %s: want a JSON parse error detail", r.body)
				}
				if after := f.snapshot(); after != before {
					t.Fatalf("rejected request changed the database:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	})
}

// TestTenantIsolation uses organization b's token on a's webhook through
// every verb and b's paths: always 404, never a change.
func TestTenantIsolation(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		f := newFixture(t, s)
		id := f.create("https://example.com/a-only")
		body := `{"url": "https://evil.example", "secret_token": "stolen"}`
		for _, m := range []string{"GET", "PUT", "PATCH", "DELETE"} {
			t.Run("b path "+m, func(t *testing.T) {
				before := f.snapshot()
				wantJSON(t, f.do(m, "/api/v1/b/webhooks/"+id+"/", f.tokB, body), 404, `{"detail": "Not found."}`)
				if f.snapshot() != before {
					t.Fatal("database changed")
				}
			})
			t.Run("a path with b token "+m, func(t *testing.T) {
				before := f.snapshot()
				r := f.do(m, "/api/v1/a/webhooks/"+id+"/", f.tokB, body)
				if r.status != 404 || !strings.Contains(string(r.body), "The requested resource was not found on this server.") {
					t.Fatalf("got %d %s, want 404 with the seed sentence", r.status, r.body)
				}
				if f.snapshot() != before {
					t.Fatal("database changed")
				}
			})
		}
		r := f.do("GET", "/api/v1/b/webhooks/", f.tokB, nil)
		if m := r.json(t); m["count"] != float64(0) {
			t.Fatalf("b's list: got %s, want empty", r.body)
		}
	})
}

func TestRoutingAndHealth(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		f := newFixture(t, s)
		wantJSON(t, f.do("GET", "/healthz", "", nil), 200, `{"status": "ok"}`)
		wantJSON(t, f.do("GET", "/readyz", "", nil), 200, `{"status": "ok", "checks": {"database": "ok"}}`)
		wantJSON(t, f.do("GET", "/api/v1/a/webhooks", f.tokA, nil), 404, `{"detail": "Not found."}`)
		wantJSON(t, f.do("GET", "/nope/", "", nil), 404, `{"detail": "Not found."}`)
		wantJSON(t, f.do("DELETE", "/api/v1/a/webhooks/", f.tokA, nil), 405, `{"detail": "Method \"DELETE\" not allowed."}`)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		r := f.do("GET", "/readyz", "", nil)
		if r.status != 503 {
			t.Fatalf("readyz with the database closed: got %d %s, want 503", r.status, r.body)
		}
		r = f.do("GET", "/api/v1/a/webhooks/", f.tokA, nil)
		if r.status != 500 && r.status != 503 || r.json(t)["detail"] == nil {
			t.Fatalf("API with the database closed: got %d %s, want a JSON 5xx", r.status, r.body)
		}
	})
}

// TestCreateTimeSSRF refuses address literals of blocked ranges when a
// guard is configured, with a field error, and changes nothing.
func TestCreateTimeSSRF(t *testing.T) {
	s := modelstest.SQLite(t)
	f := newFixture(t, s)
	f.handler = api.New(api.Config{Store: s, Guard: egress.NewGuard(nil)})
	id := f.create("https://example.com/keep")
	tests := []struct {
		url     string
		blocked bool
	}{
		{"http://10.0.0.1/hook", true},
		{"http://169.254.169.254/latest/meta-data/", true},
		{"http://[::1]:8080/", true},
		{"http://[::ffff:127.0.0.1]/", true},
		{"http://0x7f000001/", true},
		{"http://2130706433/", true},
		{"http://127.1/", true},
		{"http://localhost:9000/", true},
		{"http://LOCALHOST./", true},
		{"http://api.localhost/", true},
		{"http://100.64.0.1/", true},
		{"https://example.com/hook", false},
		{"https://93.184.216.34/hook", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			before := f.snapshot()
			for _, r := range []response{
				f.do("POST", "/api/v1/a/webhooks/", f.tokA, map[string]string{"url": tt.url, "secret_token": "s"}),
				f.do("PATCH", "/api/v1/a/webhooks/"+id+"/", f.tokA, map[string]string{"url": tt.url}),
			} {
				if !tt.blocked {
					if r.status != 201 && r.status != 200 {
						t.Fatalf("got %d %s, want success", r.status, r.body)
					}
					continue
				}
				msgs, _ := r.json(t)["url"].([]any)
				if r.status != 400 || len(msgs) != 1 || !strings.HasPrefix(msgs[0].(string), "Enter a URL of a public endpoint: ") {
					t.Fatalf("got %d %s, want 400 with a url error", r.status, r.body)
				}
			}
			if tt.blocked && f.snapshot() != before {
				t.Fatal("a refused URL changed the database")
			}
		})
	}
	// The dev policy admits loopback.
	f.handler = api.New(api.Config{Store: s, Guard: egress.NewGuard(egress.LoopbackCIDRs)})
	if r := f.do("POST", "/api/v1/a/webhooks/", f.tokA, map[string]string{"url": "http://127.0.0.1:9000/", "secret_token": "s"}); r.status != 201 {
		t.Fatalf("loopback with the dev policy: %d %s", r.status, r.body)
	}
}
