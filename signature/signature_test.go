package signature_test

import (
	"testing"

	"github.com/streamhooks/streamhooks/signature"
)

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 2048)
	for b.Loop() {
		signature.Sign([]byte("secret"), "msg_2b6a0d5e-3c2a-5f8e-9d71-0c6b2f3e4a5b", 1764000000, body)
	}
}
