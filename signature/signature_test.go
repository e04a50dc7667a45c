package signature_test

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/streamhooks/streamhooks/signature"
)

// specKey is the key of the Standard Webhooks specification's published
// example (whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, base64-decoded): our
// key is raw bytes, so the decoded ones give the spec's signature.
func specKey(t testing.TB) []byte {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSign(t *testing.T) {
	tests := []struct {
		name   string
		secret []byte
		id     string
		ts     int64
		body   string
		want   string
	}{
		{"specification example", specKey(t), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, `{"test": 2432232314}`,
			"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
		// A secret_token is used as registered, never base64-decoded.
		{"raw secret_token", []byte("whsec-test-secret"), "msg_1", 1764000000, `{"id":"a1"}`,
			"v1,CQw9JnSYIYZl9b3vKSrLY4CQ1kvZ1GyfIvkzNqDaDE8="},
		{"all empty", nil, "", 0, "",
			"v1,A6f2nN49Jdcn19OedbQNRKGG/vX+magIZxOQBQRhZBM="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := signature.Sign(tt.secret, tt.id, tt.ts, []byte(tt.body)); got != tt.want {
				t.Fatalf("Sign: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("whsec-test-secret")
	const id, ts, body = "msg_1", int64(1764000000), `{"id":"a1"}`
	good := signature.Sign(secret, id, ts, []byte(body))
	other := signature.Sign([]byte("rotated-secret"), id, ts, []byte(body))
	tests := []struct {
		name   string
		secret []byte
		id     string
		ts     int64
		body   string
		header string
		want   bool
	}{
		{"exact", secret, id, ts, body, good, true},
		{"first of several", secret, id, ts, body, good + " " + other, true},
		{"last of several", secret, id, ts, body, other + " v1a,c2lnbmF0dXJl " + good, true},
		{"surrounding spaces", secret, id, ts, body, "  " + good + "  ", true},
		{"none of several", secret, id, ts, body, other + " v1,AAAA", false},
		{"empty header", secret, id, ts, body, "", false},
		{"wrong secret", []byte("other"), id, ts, body, good, false},
		{"wrong id", secret, "msg_2", ts, body, good, false},
		{"wrong timestamp", secret, id, ts + 1, body, good, false},
		{"wrong body", secret, id, ts, body + " ", good, false},
		{"no version", secret, id, ts, body, good[len("v1,"):], false},
		{"other version", secret, id, ts, body, "v2," + good[len("v1,"):], false},
		{"truncated", secret, id, ts, body, good[:len(good)-1], false},
		{"two joined without a space", secret, id, ts, body, good + good, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := signature.Verify(tt.secret, tt.id, tt.ts, []byte(tt.body), tt.header); got != tt.want {
				t.Fatalf("Verify(%q): got %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

// interopCases are the messages signed by one implementation and verified
// by the other: secrets that are not base64, bodies with bytes that are
// not UTF-8.
var interopCases = []struct {
	name   string
	secret []byte
	body   []byte
}{
	{"secret_token", []byte("whsec-test-secret"), []byte(`{"id":"a1","type":"asset.updated"}`)},
	{"unicode secret", []byte("sécret 🔑"), []byte(`{"name":"été"}`)},
	{"binary body", []byte("s"), []byte{0, 0xff, '.', '\n'}},
	{"empty body", []byte("k"), nil},
}

// TestSignVerifiedByStandardWebhooks: the official Go library, keyed with
// the same raw bytes, accepts what Sign produces. Its Verify enforces a
// 5-minute tolerance, so the timestamp is now.
func TestSignVerifiedByStandardWebhooks(t *testing.T) {
	for _, c := range interopCases {
		t.Run(c.name, func(t *testing.T) {
			wh, err := standardwebhooks.NewWebhookRaw(c.secret)
			if err != nil {
				t.Fatal(err)
			}
			ts := time.Now().Unix()
			h := http.Header{}
			h.Set("webhook-id", "msg_"+c.name)
			h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
			h.Set("webhook-signature", signature.Sign(c.secret, "msg_"+c.name, ts, c.body))
			if err := wh.Verify(c.body, h); err != nil {
				t.Fatalf("standardwebhooks refused our signature: %v", err)
			}
			h.Set("webhook-signature", signature.Sign(c.secret, "msg_"+c.name, ts, append([]byte("x"), c.body...)))
			if err := wh.Verify(c.body, h); err == nil {
				t.Fatal("standardwebhooks accepted the signature of another body")
			}
		})
	}
}

// TestVerifyAcceptsStandardWebhooksSign: Verify accepts what the official
// Go library signs, alone or among other signatures.
func TestVerifyAcceptsStandardWebhooksSign(t *testing.T) {
	for _, c := range interopCases {
		t.Run(c.name, func(t *testing.T) {
			wh, err := standardwebhooks.NewWebhookRaw(c.secret)
			if err != nil {
				t.Fatal(err)
			}
			ts := time.Now().Unix()
			sig, err := wh.Sign("msg_"+c.name, time.Unix(ts, 0), c.body)
			if err != nil {
				t.Fatal(err)
			}
			if !signature.Verify(c.secret, "msg_"+c.name, ts, c.body, sig) {
				t.Fatalf("Verify refused the official signature %q", sig)
			}
			if !signature.Verify(c.secret, "msg_"+c.name, ts, c.body, "v1,bm90IGl0 "+sig) {
				t.Fatalf("Verify refused the official signature %q after another one", sig)
			}
			if signature.Verify(c.secret, "msg_"+c.name, ts+1, c.body, sig) {
				t.Fatal("Verify accepted the official signature for another timestamp")
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 2048)
	for b.Loop() {
		signature.Sign([]byte("secret"), "msg_2b6a0d5e-3c2a-5f8e-9d71-0c6b2f3e4a5b", 1764000000, body)
	}
}

func BenchmarkVerify(b *testing.B) {
	body := make([]byte, 2048)
	header := signature.Sign([]byte("old"), "msg_1", 1764000000, body) + " " + signature.Sign([]byte("secret"), "msg_1", 1764000000, body)
	for b.Loop() {
		signature.Verify([]byte("secret"), "msg_1", 1764000000, body, header)
	}
}
