// Package signature signs webhook deliveries under the Standard Webhooks
// scheme (v1, HMAC-SHA256), keyed with the secret_token exactly as the
// customer registered it.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
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
