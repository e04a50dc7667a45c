package bench

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAssetJSON: the bench's asset is valid JSON of about 1 KiB whose
// first "id" is the event id, where the receiver looks for it.
func TestAssetJSON(t *testing.T) {
	b := assetJSON("bench1-42")
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if v["id"] != "bench1-42" || !strings.HasPrefix(string(b), `{"id":"bench1-42"`) {
		t.Fatalf("id %v: want the event id, first", v["id"])
	}
	if n := len(b); n < 900 || n > 1200 {
		t.Fatalf("%d bytes, want about 1 KiB", n)
	}
}
