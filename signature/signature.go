// Package signature signs webhook deliveries and verifies their signatures
// under the Standard Webhooks scheme (v1, HMAC-SHA256), keyed with the
// secret_token exactly as the customer registered it.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// Sign returns the Standard Webhooks signature header value for one attempt:
// "v1," + base64(HMAC-SHA256(key = the secret's bytes, id.timestamp.body)).
// The key is the secret_token exactly as the customer registered it (the
// TPStreams contract), not a base64-decoded whsec_ key.
func Sign(secret []byte, msgID string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header, a webhook-signature value, holds the
// signature Sign gives for this message. Standard Webhooks lets a sender
// list several space-separated signatures (during a secret rotation, or
// under other schemes), so any one matching is enough; entries of other
// versions simply never match. Every entry is compared in constant time,
// and all of them are compared, so the time taken says nothing about which
// one, or how much of one, matched.
func Verify(secret []byte, msgID string, timestamp int64, body []byte, header string) bool {
	want := []byte(Sign(secret, msgID, timestamp, body))
	ok := false
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), want) {
			ok = true
		}
	}
	return ok
}
