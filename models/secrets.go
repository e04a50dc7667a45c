package models

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// encPrefix marks an encrypted secret_token value: "enc:v1:" +
// base64(nonce || AES-256-GCM ciphertext), with the webhook id as
// additional data so a ciphertext cannot be moved to another row.
const encPrefix = "enc:v1:"

// SecretKeySize is the length of STREAMHOOKS_SECRET_KEY once decoded.
const SecretKeySize = 32

// ParseSecretKey decodes a base64 (standard or URL, padded or not) 32-byte
// key.
func ParseSecretKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != SecretKeySize {
				return nil, fmt.Errorf("secret key is %d bytes, want %d", len(k), SecretKeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("secret key is not base64")
}

// NewSecretKey returns a random key, base64-encoded.
func NewSecretKey() string {
	k := make([]byte, SecretKeySize)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// SetSecretKey makes the store encrypt webhook secrets at rest. Without a
// key they are stored in clear (tests of other packages, never production:
// the api and worker roles refuse to start without one).
func (s *Store) SetSecretKey(key []byte) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	s.aead = aead
	return nil
}

func (s *Store) sealSecret(webhookID, secret string) string {
	if s.aead == nil || secret == "" {
		return secret
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, []byte(secret), []byte(webhookID))
	return encPrefix + base64.StdEncoding.EncodeToString(out)
}

func (s *Store) openSecret(w *Webhook) error {
	if !strings.HasPrefix(w.SecretToken, encPrefix) {
		return nil
	}
	if s.aead == nil {
		return fmt.Errorf("webhook %s: its secret is encrypted and no secret key is configured", w.ID)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(w.SecretToken, encPrefix))
	n := s.aead.NonceSize()
	if err != nil || len(raw) < n {
		return fmt.Errorf("webhook %s: malformed encrypted secret", w.ID)
	}
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(w.ID))
	if err != nil {
		return fmt.Errorf("webhook %s: decrypt secret (wrong STREAMHOOKS_SECRET_KEY?): %w", w.ID, err)
	}
	w.SecretToken = string(plain)
	return nil
}
