package api

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/streamhooks/streamhooks/egress"
)

// FuzzWebhookURL: validation never panics, and whatever it accepts is an
// absolute http(s) URL with a host that the create-time guard can judge.
func FuzzWebhookURL(f *testing.F) {
	for _, seed := range []string{
		"https://example.com/hook", "http://127.0.0.1:8080/", "http://[::1]/", "ftp://x", "javascript:alert(1)",
		"http://0x7f000001/", "http://user:pass@host:99999/", "http://[fe80::1%25eth0]/", "http://例え.jp/", "//x", "http://",
	} {
		f.Add(seed)
	}
	s := &Server{guard: egress.NewGuard(nil)}
	f.Fuzz(func(t *testing.T, raw string) {
		if !validWebhookURL(raw) {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			t.Fatalf("accepted %q: parse %v, host %q", raw, err, u.Hostname())
		}
		if scheme := strings.ToLower(u.Scheme); scheme != "http" && scheme != "https" {
			t.Fatalf("accepted %q with scheme %q", raw, u.Scheme)
		}
		_ = s.blockedTarget(raw)
	})
}

// FuzzAssetFields: the event body parser never panics and only accepts
// JSON objects with a non-empty string id.
func FuzzAssetFields(f *testing.F) {
	for _, seed := range []string{
		`{"id": "v1", "video": {"status": "Completed"}}`, `{"id": 5}`, `[]`, `{"id": "x", "live_stream": {"status": 3}}`,
		`{"id": "\u0000"}`, `{"id": "a", "video": null}`, `{`, `"str"`, `{"ID": "upper"}`, `{"id": "a", "Video": {"status": "x"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) == 0 {
			return
		}
		id, _, err := assetFields(payload)
		if err != nil {
			return
		}
		var obj map[string]any
		if json.Unmarshal(payload, &obj) != nil || strings.TrimSpace(id) == "" || obj["id"] != id {
			t.Fatalf("accepted %q with id %q", payload, id)
		}
	})
}

func TestAssetFields(t *testing.T) {
	tests := []struct {
		payload, wantID, wantStatus string
		wantErr                     bool
	}{
		{`{"id": "v1", "video": {"status": "Completed"}}`, "v1", "Completed", false},
		{`{"id": "l1", "live_stream": {"status": "Streaming"}}`, "l1", "Streaming", false},
		{`{"id": "b", "video": {"status": ""}, "live_stream": {"status": "Not Started"}}`, "b", "Not Started", false},
		{`{"id": "n", "video": {"status": 3}}`, "n", "", false},
		{`{"ID": "upper"}`, "", "", true},
		{`{"id": "a", "Video": {"status": "x"}}`, "a", "", false},
		{`{"id": ""}`, "", "", true},
		{`{"id": "  "}`, "", "", true},
		{`{"id": 5}`, "", "", true},
		{`[1]`, "", "", true},
		// The limit counts characters, as for event_id: 200 two-byte
		// characters pass, 201 do not.
		{`{"id": "` + strings.Repeat("é", 200) + `"}`, strings.Repeat("é", 200), "", false},
		{`{"id": "` + strings.Repeat("é", 201) + `"}`, "", "", true},
	}
	for _, tt := range tests {
		id, status, err := assetFields([]byte(tt.payload))
		if (err != nil) != tt.wantErr || id != tt.wantID || status != tt.wantStatus {
			t.Errorf("assetFields(%s) = %q, %q, %v; want %q, %q, error %v", tt.payload, id, status, err, tt.wantID, tt.wantStatus, tt.wantErr)
		}
	}
}
