package models

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sealed values of the secret_token and previous_secret_token columns.
//
// encPrefixV2 is the current format: "enc:v2:<kid>:" + base64(nonce ||
// AES-256-GCM ciphertext), kid naming the key (SecretKeyID) so that a ring
// of several keys opens a value with the right one at the first try and an
// operator learns which key is missing when none fits.
//
// encPrefixV1 is the legacy format of the single-key era: "enc:v1:" +
// base64(nonce || ciphertext), with no key id; it is tried with every key
// of the ring and rewritten by ReencryptSecrets.
//
// Both use the webhook id as additional data so a ciphertext cannot be
// moved to another row.
const (
	encPrefixV1 = "enc:v1:"
	encPrefixV2 = "enc:v2:"
)

// SecretKeySize is the length of one STREAMHOOKS_SECRET_KEY key once
// decoded.
const SecretKeySize = 32

// keyIDBytes is how much of a key's SHA-256 names it: 8 bytes (16 hex
// digits) tell the keys of a ring apart without revealing anything usable
// about the key.
const keyIDBytes = 8

// defaultReencryptBatch is the batch size of ReencryptSecrets when the
// caller gives none.
const defaultReencryptBatch = 500

// maxReencryptTries bounds how often ReencryptSecrets retries one row that
// concurrent writers keep changing under it.
const maxReencryptTries = 10

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

// ParseSecretKeys decodes STREAMHOOKS_SECRET_KEY as a key ring: a
// comma-separated list of base64 32-byte keys, the current one first
// (it seals every new value; all of them open). A list lets a master key
// be rotated without downtime: processes that know both keys can read what
// any other process wrote, whichever of the two it seals with. Empty
// entries and repeated keys are errors, as they are always typos. Errors
// name the entry by position, never by content.
func ParseSecretKeys(s string) ([][]byte, error) {
	parts := strings.Split(s, ",")
	keys := make([][]byte, 0, len(parts))
	for i, p := range parts {
		// "entry 2 of 3: ..." only when there are several, so a single
		// key fails with the same message as ParseSecretKey.
		where := ""
		if len(parts) > 1 {
			where = fmt.Sprintf("entry %d of %d: ", i+1, len(parts))
		}
		if strings.TrimSpace(p) == "" {
			return nil, fmt.Errorf("%sempty secret key", where)
		}
		k, err := ParseSecretKey(p)
		if err != nil {
			return nil, fmt.Errorf("%s%w", where, err)
		}
		for j, prev := range keys {
			if bytes.Equal(prev, k) {
				return nil, fmt.Errorf("%ssecret key repeats entry %d", where, j+1)
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// NewSecretKey returns a random key, base64-encoded.
func NewSecretKey() string {
	k := make([]byte, SecretKeySize)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// SecretKeyID names a key in sealed values, logs and error messages: the
// lowercase hex of the first 8 bytes of its SHA-256. It identifies a key
// without disclosing it.
func SecretKeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:keyIDBytes])
}

// ringKey is one key of a keyRing, ready to use.
type ringKey struct {
	id   string
	aead cipher.AEAD
}

// keyRing holds the master keys of a store: keys[0] is current and seals,
// every key opens. It is never changed once built.
type keyRing struct {
	keys []ringKey
}

// newKeyRing builds a ring from raw keys, current first.
func newKeyRing(keys [][]byte) (*keyRing, error) {
	if len(keys) == 0 {
		return nil, errors.New("secret keys: none given")
	}
	r := &keyRing{keys: make([]ringKey, 0, len(keys))}
	for i, key := range keys {
		if len(key) != SecretKeySize {
			return nil, fmt.Errorf("secret key %d is %d bytes, want %d", i+1, len(key), SecretKeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("secret key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secret key %d: %w", i+1, err)
		}
		id := SecretKeyID(key)
		if _, dup := r.byID(id); dup {
			return nil, fmt.Errorf("secret key %d: key %s is already in the ring", i+1, id)
		}
		r.keys = append(r.keys, ringKey{id: id, aead: aead})
	}
	return r, nil
}

func (r *keyRing) current() ringKey { return r.keys[0] }

func (r *keyRing) byID(id string) (ringKey, bool) {
	for _, k := range r.keys {
		if k.id == id {
			return k, true
		}
	}
	return ringKey{}, false
}

// SetSecretKey makes the store encrypt webhook secrets at rest with one
// key. It is SetSecretKeys with a ring of one, kept because most callers
// (tests, tools) only ever have one key.
func (s *Store) SetSecretKey(key []byte) error { return s.SetSecretKeys(key) }

// SetSecretKeys makes the store encrypt webhook secrets at rest: the first
// key seals every value written from now on, and every key opens what it
// sealed (a value names its key). Without any call secrets are stored in
// clear (tests of other packages, never production: the api and worker
// roles refuse to start without a key). Call it before the store is shared
// between goroutines: a process takes its keys once, at start, and a new
// key list means a restart (see "Rotating the master key" in
// docs/reliability.md).
func (s *Store) SetSecretKeys(keys ...[]byte) error {
	r, err := newKeyRing(keys)
	if err != nil {
		return err
	}
	s.keys = r
	return nil
}

// CurrentSecretKeyID returns the id (SecretKeyID) of the key the store
// seals with, or "" when it has none: what an operator compares with the
// ids in sealed values and in the output of "streamhooks reencrypt".
func (s *Store) CurrentSecretKeyID() string {
	if s.keys == nil {
		return ""
	}
	return s.keys.current().id
}

func (s *Store) sealSecret(webhookID, secret string) string {
	if s.keys == nil || secret == "" {
		return secret
	}
	k := s.keys.current()
	nonce := make([]byte, k.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, []byte(secret), []byte(webhookID))
	return encPrefixV2 + k.id + ":" + base64.StdEncoding.EncodeToString(out)
}

// sealedWithCurrent reports whether a stored value needs no re-encryption:
// it is empty (nothing to protect) or sealed under the current key.
func (s *Store) sealedWithCurrent(value string) bool {
	return value == "" || strings.HasPrefix(value, encPrefixV2+s.keys.current().id+":")
}

// openSecret decrypts the secrets of a webhook read from the database in
// place. A previous secret whose grace window is over is dropped without
// being decrypted: it signs nothing any more.
func (s *Store) openSecret(w *Webhook) error {
	plain, err := s.openValue(w.ID, w.SecretToken)
	if err != nil {
		return err
	}
	w.SecretToken = plain
	if w.PreviousSecretExpiresAt == nil || !w.PreviousSecretExpiresAt.After(time.Now()) {
		w.PreviousSecretToken, w.PreviousSecretExpiresAt = "", nil
		return nil
	}
	if w.PreviousSecretToken, err = s.openValue(w.ID, w.PreviousSecretToken); err != nil {
		return err
	}
	return nil
}

// openValue decrypts one stored secret of webhook webhookID; a value in
// clear is returned as it is. A v2 value is opened with the key it names;
// a legacy v1 value with whichever key of the ring fits.
func (s *Store) openValue(webhookID, value string) (string, error) {
	v2, v1 := strings.HasPrefix(value, encPrefixV2), strings.HasPrefix(value, encPrefixV1)
	if !v1 && !v2 {
		return value, nil
	}
	if s.keys == nil {
		return "", fmt.Errorf("webhook %s: its secret is encrypted and no secret key is configured", webhookID)
	}
	if v2 {
		kid, body, ok := strings.Cut(strings.TrimPrefix(value, encPrefixV2), ":")
		if !ok {
			return "", fmt.Errorf("webhook %s: malformed encrypted secret (no key id)", webhookID)
		}
		k, ok := s.keys.byID(kid)
		if !ok {
			return "", fmt.Errorf("webhook %s: its secret is sealed with key %s, which is not configured: add that key to STREAMHOOKS_SECRET_KEY (a comma-separated list, current key first)", webhookID, kid)
		}
		plain, err := openWith(k, webhookID, body)
		if err != nil {
			return "", fmt.Errorf("webhook %s: decrypt secret with key %s: %w", webhookID, kid, err)
		}
		return plain, nil
	}
	var err error
	for _, k := range s.keys.keys {
		var plain string
		if plain, err = openWith(k, webhookID, strings.TrimPrefix(value, encPrefixV1)); err == nil {
			return plain, nil
		}
	}
	return "", fmt.Errorf("webhook %s: decrypt legacy enc:v1 secret with any of the %d configured keys (is its key missing from STREAMHOOKS_SECRET_KEY?): %w", webhookID, len(s.keys.keys), err)
}

// errMalformedSecret reports a sealed value that is not valid base64 or is
// too short to hold a nonce: a damaged row, not a wrong key.
var errMalformedSecret = errors.New("malformed encrypted secret")

// openWith decrypts body, the base64(nonce || ciphertext) part of a sealed
// value, with one key.
func openWith(k ringKey, webhookID, body string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(body)
	n := k.aead.NonceSize()
	if err != nil || len(raw) < n {
		return "", errMalformedSecret
	}
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(webhookID))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// ReencryptResult counts what ReencryptSecrets did: Scanned webhook rows
// (deleted ones included), of which Rewritten had at least one value
// sealed again under the current key.
type ReencryptResult struct {
	Scanned   int
	Rewritten int
}

// sealedRow is what ReencryptSecrets reads and writes of a webhook.
type sealedRow struct {
	ID                  string
	SecretToken         string
	PreviousSecretToken string
}

// ReencryptSecrets rewrites every secret_token and previous_secret_token
// that is not sealed with the current key (legacy v1 values, v2 values of
// an older key, values in clear) under the current key, so that an older
// key can then be dropped from STREAMHOOKS_SECRET_KEY. It walks all
// webhooks, soft-deleted ones too (deliveries still load them), in id
// order, batch rows at a time (500 when batch <= 0), and may run while the
// api and workers serve: each row is written with an optimistic UPDATE
// that only matches the values it read, so a secret an API request set
// meanwhile is never overwritten; such a row is read again and re-sealed
// if it still needs it. Running it again rewrites nothing. It stops at the
// first value it cannot open (its key is not configured), with what it did
// so far.
func (s *Store) ReencryptSecrets(ctx context.Context, batch int) (ReencryptResult, error) {
	var res ReencryptResult
	if s.keys == nil {
		return res, errors.New("re-encrypt secrets: no secret key is configured (set STREAMHOOKS_SECRET_KEY)")
	}
	if batch <= 0 {
		batch = defaultReencryptBatch
	}
	after := ""
	for {
		var rows []sealedRow
		if err := s.db.WithContext(ctx).Unscoped().Model(&Webhook{}).
			Select("id", "secret_token", "previous_secret_token").
			Where("id > ?", after).Order("id").Limit(batch).
			Find(&rows).Error; err != nil {
			return res, fmt.Errorf("re-encrypt secrets: list webhooks after %q: %w", after, translate(err, "Webhook"))
		}
		for i := range rows {
			rewritten, err := s.reencryptRow(ctx, rows[i])
			if err != nil {
				return res, fmt.Errorf("re-encrypt secrets: %w", err)
			}
			res.Scanned++
			if rewritten {
				res.Rewritten++
			}
		}
		if len(rows) < batch {
			return res, nil
		}
		after = rows[len(rows)-1].ID
	}
}

// reencryptRow brings one webhook's sealed values under the current key,
// starting from the values in row as read. It reports whether it wrote.
// The UPDATE matches the read values exactly: when it matches no row, a
// concurrent writer changed them, and the row is read again and judged
// afresh, up to maxReencryptTries times.
func (s *Store) reencryptRow(ctx context.Context, row sealedRow) (bool, error) {
	for range maxReencryptTries {
		if s.sealedWithCurrent(row.SecretToken) && s.sealedWithCurrent(row.PreviousSecretToken) {
			return false, nil
		}
		secret, err := s.reseal(row.ID, row.SecretToken)
		if err != nil {
			return false, err
		}
		prev, err := s.reseal(row.ID, row.PreviousSecretToken)
		if err != nil {
			return false, err
		}
		// UpdateColumns: re-encryption is not a change of the webhook, so
		// updated_at stays; Unscoped: deleted rows are rewritten too.
		tx := s.db.WithContext(ctx).Unscoped().Model(&Webhook{}).
			Where("id = ? AND secret_token = ? AND previous_secret_token = ?", row.ID, row.SecretToken, row.PreviousSecretToken).
			UpdateColumns(map[string]any{"secret_token": secret, "previous_secret_token": prev})
		if tx.Error != nil {
			return false, fmt.Errorf("webhook %s: write re-encrypted secrets: %w", row.ID, translate(tx.Error, "Webhook"))
		}
		if tx.RowsAffected == 1 {
			return true, nil
		}
		// Changed (or hard-deleted) since it was read: judge it again.
		var fresh []sealedRow
		if err := s.db.WithContext(ctx).Unscoped().Model(&Webhook{}).
			Select("id", "secret_token", "previous_secret_token").
			Where("id = ?", row.ID).Limit(1).Find(&fresh).Error; err != nil {
			return false, fmt.Errorf("webhook %s: re-read after a concurrent change: %w", row.ID, translate(err, "Webhook"))
		}
		if len(fresh) == 0 {
			return false, nil
		}
		row = fresh[0]
	}
	return false, fmt.Errorf("webhook %s: its secrets changed %d times while being re-encrypted; run again", row.ID, maxReencryptTries)
}

// reseal returns value sealed under the current key: as it is when it
// already is (or is empty), else opened and sealed again.
func (s *Store) reseal(webhookID, value string) (string, error) {
	if s.sealedWithCurrent(value) {
		return value, nil
	}
	plain, err := s.openValue(webhookID, value)
	if err != nil {
		return "", err
	}
	return s.sealSecret(webhookID, plain), nil
}
