package models_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// The master keys of these tests: A is the old one, B the new one, C one
// nobody configured.
var (
	keyA = []byte("master-key-A-of-exactly-32-bytes")
	keyB = []byte("master-key-B-of-exactly-32-bytes")
	keyC = []byte("master-key-C-of-exactly-32-bytes")
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// sealedPrefix is how a value sealed under key starts.
func sealedPrefix(key []byte) string { return "enc:v2:" + models.SecretKeyID(key) + ":" }

// ringStore opens another store on the database at dsn (another process,
// in effect) with the given key ring, current key first.
func ringStore(t *testing.T, dsn string, keys ...[]byte) *models.Store {
	t.Helper()
	s, err := models.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if len(keys) > 0 {
		if err := s.SetSecretKeys(keys...); err != nil {
			t.Fatalf("set keys: %v", err)
		}
	}
	return s
}

// rawDB is a plain connection to the database at dsn, to read and write
// the sealed columns as stored.
type rawDB struct {
	db       *sql.DB
	postgres bool
}

func openRaw(t *testing.T, dsn string) *rawDB {
	t.Helper()
	r := &rawDB{postgres: !strings.HasPrefix(dsn, "sqlite:")}
	driver, conn := "pgx", dsn
	if !r.postgres {
		driver = "sqlite"
		conn = "file:" + filepath.ToSlash(strings.TrimPrefix(dsn, "sqlite:")) + "?_pragma=busy_timeout(10000)&_time_format=sqlite"
	}
	db, err := sql.Open(driver, conn)
	if err != nil {
		t.Fatalf("open raw connection: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	r.db = db
	return r
}

// q rewrites ? placeholders as $n for PostgreSQL.
func (r *rawDB) q(query string) string {
	if !r.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (r *rawDB) secrets(t *testing.T, id string) (secret, prev string) {
	t.Helper()
	if err := r.db.QueryRow(r.q("SELECT secret_token, previous_secret_token FROM webhooks WHERE id = ?"), id).Scan(&secret, &prev); err != nil {
		t.Fatalf("read stored secrets of %s: %v", id, err)
	}
	return secret, prev
}

// set writes a webhook's sealed columns as given; a non-empty prev gets a
// grace window that has not ended.
func (r *rawDB) set(t *testing.T, id, secret, prev string) {
	t.Helper()
	var until any
	if prev != "" {
		until = time.Now().Add(time.Hour).UTC()
	}
	if _, err := r.db.Exec(r.q("UPDATE webhooks SET secret_token = ?, previous_secret_token = ?, previous_secret_expires_at = ? WHERE id = ?"), secret, prev, until, id); err != nil {
		t.Fatalf("write stored secrets of %s: %v", id, err)
	}
}

func (r *rawDB) allSealed(t *testing.T) map[string][2]string {
	t.Helper()
	rows, err := r.db.Query("SELECT id, secret_token, previous_secret_token FROM webhooks")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][2]string{}
	for rows.Next() {
		var id, s, p string
		if err := rows.Scan(&id, &s, &p); err != nil {
			t.Fatal(err)
		}
		out[id] = [2]string{s, p}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sealV1 seals secret for webhook id in the legacy single-key format.
func sealV1(t *testing.T, key []byte, id, secret string) string {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return "enc:v1:" + base64.StdEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(secret), []byte(id)))
}

func create(t *testing.T, s *models.Store, org, secret string) *models.Webhook {
	t.Helper()
	w, err := s.CreateWebhook(context.Background(), org, models.WebhookUpdate{URL: ptr("https://x.example"), SecretToken: ptr(secret)})
	if err != nil {
		t.Fatalf("create webhook: %v", err)
	}
	return w
}

func wantSecret(t *testing.T, s *models.Store, org, id, secret, prev string) {
	t.Helper()
	w, err := s.GetWebhook(context.Background(), org, id)
	if err != nil {
		t.Fatalf("get webhook %s: %v", id, err)
	}
	if w.SecretToken != secret || w.PreviousSecretToken != prev {
		t.Fatalf("webhook %s: secrets %q / %q, want %q / %q", id, w.SecretToken, w.PreviousSecretToken, secret, prev)
	}
}

func TestParseSecretKeys(t *testing.T) {
	a, b := b64(keyA), b64(keyB)
	keys, err := models.ParseSecretKeys(" " + b + " ,\t" + a + "\n")
	if err != nil || len(keys) != 2 || string(keys[0]) != string(keyB) || string(keys[1]) != string(keyA) {
		t.Fatalf("ParseSecretKeys(b, a) = %q, %v: want [B A]", keys, err)
	}
	if keys, err := models.ParseSecretKeys(a); err != nil || len(keys) != 1 || string(keys[0]) != string(keyA) {
		t.Fatalf("ParseSecretKeys(a) = %q, %v", keys, err)
	}
	for _, tt := range []struct{ in, want string }{
		{"", "empty secret key"},
		{"  ", "empty secret key"},
		{a + ",", "entry 2 of 2: empty secret key"},
		{a + ", ," + b, "entry 2 of 3: empty secret key"},
		{"," + a, "entry 1 of 2: empty secret key"},
		{a + "," + b + "," + a, "entry 3 of 3: secret key repeats entry 1"},
		// The same key spelt in another base64 alphabet is still the same.
		{a + "," + base64.RawURLEncoding.EncodeToString(keyA), "entry 2 of 2: secret key repeats entry 1"},
		{"dG9vLXNob3J0", "secret key is 9 bytes"},
		{a + ",dG9vLXNob3J0", "entry 2 of 2: secret key is 9 bytes"},
		{a + ",not base64!", "entry 2 of 2: secret key is not base64"},
	} {
		_, err := models.ParseSecretKeys(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSecretKeys(%q) = %v, want an error with %q", tt.in, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), a) || strings.Contains(err.Error(), b) {
			t.Errorf("ParseSecretKeys(%q): error %q shows a key", tt.in, err)
		}
	}
	sum := sha256.Sum256(keyA)
	if id := models.SecretKeyID(keyA); id != hex.EncodeToString(sum[:8]) || len(id) != 16 || id != strings.ToLower(id) {
		t.Fatalf("SecretKeyID = %q", id)
	}
	var s models.Store
	for _, bad := range [][][]byte{nil, {keyA[:16]}, {keyA, keyB, keyA}} {
		if err := s.SetSecretKeys(bad...); err == nil {
			t.Errorf("SetSecretKeys(%d keys) accepted", len(bad))
		}
	}
	if err := s.SetSecretKeys(keyB, keyA); err != nil || s.CurrentSecretKeyID() != models.SecretKeyID(keyB) {
		t.Fatalf("SetSecretKeys(B, A): %v, current %q", err, s.CurrentSecretKeyID())
	}
}

// TestSecretKeyRingOpens: a value names its key, so any ring holding that
// key opens it, whatever the key's position; a ring without it says which
// key to add.
func TestSecretKeyRingOpens(t *testing.T) {
	modelstest.EachDSN(t, func(t *testing.T, s *models.Store, dsn string) {
		ctx := context.Background()
		modelstest.Org(t, s, "a")
		raw := openRaw(t, dsn)
		onlyA := ringStore(t, dsn, keyA)
		w := create(t, onlyA, "a", "sealed-with-a")
		if stored, _ := raw.secrets(t, w.ID); !strings.HasPrefix(stored, sealedPrefix(keyA)) || strings.Contains(stored, "sealed-with-a") {
			t.Fatalf("stored %q, want a v2 value of key A", stored)
		}
		for _, ring := range [][][]byte{{keyB, keyA}, {keyA, keyB}, {keyC, keyB, keyA}} {
			wantSecret(t, ringStore(t, dsn, ring...), "a", w.ID, "sealed-with-a", "")
		}

		newB := ringStore(t, dsn, keyB, keyA)
		wb := create(t, newB, "a", "sealed-with-b")
		if stored, _ := raw.secrets(t, wb.ID); !strings.HasPrefix(stored, sealedPrefix(keyB)) {
			t.Fatalf("ring [B, A] stored %q, want a value of key B", stored)
		}
		wantSecret(t, ringStore(t, dsn, keyA, keyB), "a", wb.ID, "sealed-with-b", "")

		_, err := onlyA.GetWebhook(ctx, "a", wb.ID)
		kidB := models.SecretKeyID(keyB)
		if err == nil || !strings.Contains(err.Error(), kidB) || !strings.Contains(err.Error(), "STREAMHOOKS_SECRET_KEY") {
			t.Fatalf("ring [A] reading a value of key B: %v, want an error naming key %s and STREAMHOOKS_SECRET_KEY", err, kidB)
		}
		if strings.Contains(err.Error(), "sealed-with-b") || strings.Contains(err.Error(), b64(keyB)) {
			t.Fatalf("error %q shows a secret", err)
		}
		// A damaged value of a known key is an error, not a panic.
		raw.set(t, wb.ID, sealedPrefix(keyB)+"!!", "")
		if _, err := newB.GetWebhook(ctx, "a", wb.ID); err == nil {
			t.Fatal("a damaged value opened")
		}
	})
}

// TestSecretKeyRingOpensLegacy: enc:v1 values (no key id) of any key of the
// ring open, as do values in clear.
func TestSecretKeyRingOpensLegacy(t *testing.T) {
	modelstest.EachDSN(t, func(t *testing.T, s *models.Store, dsn string) {
		ctx := context.Background()
		modelstest.Org(t, s, "a")
		raw := openRaw(t, dsn)
		ring := ringStore(t, dsn, keyB, keyA)
		w := create(t, ring, "a", "x")
		raw.set(t, w.ID, sealV1(t, keyA, w.ID, "legacy"), sealV1(t, keyB, w.ID, "legacy-prev"))
		wantSecret(t, ring, "a", w.ID, "legacy", "legacy-prev")
		wantSecret(t, ringStore(t, dsn, keyA, keyB), "a", w.ID, "legacy", "legacy-prev")
		if _, err := ringStore(t, dsn, keyC).GetWebhook(ctx, "a", w.ID); err == nil || !strings.Contains(err.Error(), "enc:v1") {
			t.Fatalf("ring [C] opening a v1 value of key A: %v, want an error", err)
		}
		// Moved to another row, a ciphertext does not open.
		other := create(t, ring, "a", "y")
		raw.set(t, other.ID, sealV1(t, keyA, w.ID, "legacy"), "")
		if _, err := ring.GetWebhook(ctx, "a", other.ID); err == nil {
			t.Fatal("a v1 value of another webhook opened")
		}
		raw.set(t, other.ID, "in-clear", "")
		wantSecret(t, ring, "a", other.ID, "in-clear", "")
	})
}

// TestReencryptSecrets: every value not sealed with the current key (v1,
// v2 of an older key, clear text; secret_token and previous_secret_token;
// deleted webhooks too) ends up under it, across batches, the webhooks
// themselves unchanged; a second run rewrites nothing.
func TestReencryptSecrets(t *testing.T) {
	modelstest.EachDSN(t, func(t *testing.T, s *models.Store, dsn string) {
		ctx := context.Background()
		modelstest.Org(t, s, "a")
		raw := openRaw(t, dsn)
		oldA := ringStore(t, dsn, keyA)
		newB := ringStore(t, dsn, keyB, keyA)

		type want struct{ secret, prev string }
		wants := map[string]want{}
		// Sealed with A by the store, no previous secret.
		for i := range 3 {
			w := create(t, oldA, "a", fmt.Sprintf("a-%d", i))
			wants[w.ID] = want{w.SecretToken, ""}
		}
		// Rotated with A: both columns sealed with A.
		w := create(t, oldA, "a", "before-rotation")
		if _, err := oldA.RotateSecret(ctx, "a", w.ID, "after-rotation", time.Hour); err != nil {
			t.Fatal(err)
		}
		wants[w.ID] = want{"after-rotation", "before-rotation"}
		// Legacy v1 in both columns.
		w = create(t, oldA, "a", "x")
		raw.set(t, w.ID, sealV1(t, keyA, w.ID, "v1-secret"), sealV1(t, keyA, w.ID, "v1-prev"))
		wants[w.ID] = want{"v1-secret", "v1-prev"}
		// In clear (written before encryption existed).
		w = create(t, oldA, "a", "x")
		raw.set(t, w.ID, "clear-secret", "clear-prev")
		wants[w.ID] = want{"clear-secret", "clear-prev"}
		// Already current: sealed with B.
		w = create(t, newB, "a", "b-already")
		wants[w.ID] = want{"b-already", ""}
		// Soft-deleted: its secret is erased, but a previous one sealed
		// with A is left behind on purpose (deliveries still load deleted
		// webhooks, so nothing may stay under a key about to be dropped).
		deleted := create(t, oldA, "a", "gone")
		if err := oldA.DeleteWebhook(ctx, "a", deleted.ID); err != nil {
			t.Fatal(err)
		}
		raw.set(t, deleted.ID, "", sealV1(t, keyA, deleted.ID, "deleted-prev"))

		before := map[string]time.Time{}
		for id := range wants {
			got, err := newB.GetWebhook(ctx, "a", id)
			if err != nil {
				t.Fatal(err)
			}
			before[id] = got.UpdatedAt
		}

		if _, err := ringStore(t, dsn).ReencryptSecrets(ctx, 3); err == nil || !strings.Contains(err.Error(), "no secret key") {
			t.Fatalf("re-encrypt without a key: %v, want an error", err)
		}
		res, err := newB.ReencryptSecrets(ctx, 3)
		if err != nil {
			t.Fatalf("re-encrypt: %v", err)
		}
		total := len(wants) + 1
		if res != (models.ReencryptResult{Scanned: total, Rewritten: total - 1}) {
			t.Fatalf("re-encrypt = %+v, want %d scanned, %d rewritten", res, total, total-1)
		}
		for id, s := range raw.allSealed(t) {
			for _, v := range s {
				if v != "" && !strings.HasPrefix(v, sealedPrefix(keyB)) {
					t.Errorf("webhook %s still has %q after re-encryption", id, v)
				}
			}
		}
		if s, _ := raw.secrets(t, deleted.ID); s != "" {
			t.Errorf("deleted webhook got secret %q", s)
		}
		onlyB := ringStore(t, dsn, keyB)
		for id, w := range wants {
			wantSecret(t, onlyB, "a", id, w.secret, w.prev)
			if got, _ := onlyB.GetWebhook(ctx, "a", id); !got.UpdatedAt.Equal(before[id]) {
				t.Errorf("webhook %s: updated_at moved from %v to %v", id, before[id], got.UpdatedAt)
			}
		}
		if again, err := newB.ReencryptSecrets(ctx, 3); err != nil || again != (models.ReencryptResult{Scanned: total}) {
			t.Fatalf("second re-encrypt = %+v, %v: want %d scanned, 0 rewritten", again, err, total)
		}

		// A value of a key the ring lacks stops the run, naming the
		// webhook and the missing kind of key, not the secret.
		victim := create(t, newB, "a", "x")
		raw.set(t, victim.ID, sealV1(t, keyC, victim.ID, "lost"), "")
		if _, err := newB.ReencryptSecrets(ctx, 2); err == nil || !strings.Contains(err.Error(), victim.ID) || strings.Contains(err.Error(), "lost") {
			t.Fatalf("re-encrypt over a value of an unknown key: %v, want an error naming %s", err, victim.ID)
		}
	})
}

// TestReencryptKeepsConcurrentUpdate: a webhook whose secret an API request
// changes between the re-encryption's read and its write keeps the new
// secret. The "request" holds its row locks (an open transaction) while
// ReencryptSecrets reads the old values and blocks on its UPDATE; once it
// commits, the UPDATE's WHERE on the old values matches nothing, and the
// row is read again: left alone when the new value is already current,
// re-sealed (with the new plaintext) when not.
func TestReencryptKeepsConcurrentUpdate(t *testing.T) {
	modelstest.EachDSN(t, func(t *testing.T, s *models.Store, dsn string) {
		ctx := context.Background()
		modelstest.Org(t, s, "a")
		raw := openRaw(t, dsn)
		oldA := ringStore(t, dsn, keyA, keyB)
		newB := ringStore(t, dsn, keyB, keyA)

		wx, wy := create(t, oldA, "a", "old-x"), create(t, oldA, "a", "old-y")
		ax, _ := raw.secrets(t, wx.ID)
		ay, _ := raw.secrets(t, wy.ID)
		// The values the concurrent requests will write: x by a process
		// already on [B, A], y by one still on [A, B].
		if _, err := newB.UpdateWebhook(ctx, "a", wx.ID, models.WebhookUpdate{SecretToken: ptr("fresh-x")}); err != nil {
			t.Fatal(err)
		}
		if _, err := oldA.UpdateWebhook(ctx, "a", wy.ID, models.WebhookUpdate{SecretToken: ptr("fresh-y")}); err != nil {
			t.Fatal(err)
		}
		bx, _ := raw.secrets(t, wx.ID)
		ay2, _ := raw.secrets(t, wy.ID)
		raw.set(t, wx.ID, ax, "")
		raw.set(t, wy.ID, ay, "")

		tx, err := raw.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		for id, v := range map[string]string{wx.ID: bx, wy.ID: ay2} {
			if _, err := tx.Exec(raw.q("UPDATE webhooks SET secret_token = ? WHERE id = ?"), v, id); err != nil {
				t.Fatal(err)
			}
		}
		type outcome struct {
			res models.ReencryptResult
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			res, err := newB.ReencryptSecrets(ctx, 10)
			done <- outcome{res, err}
		}()
		waitBlocked(t, raw)
		select {
		case o := <-done:
			t.Fatalf("re-encrypt finished (%+v, %v) while the rows were locked", o.res, o.err)
		default:
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		var o outcome
		select {
		case o = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("re-encrypt did not finish after the commit")
		}
		if o.err != nil || o.res != (models.ReencryptResult{Scanned: 2, Rewritten: 1}) {
			t.Fatalf("re-encrypt = %+v, %v: want 2 scanned, 1 rewritten", o.res, o.err)
		}
		if got, _ := raw.secrets(t, wx.ID); got != bx {
			t.Fatalf("x: stored %q, want the concurrent request's value %q untouched", got, bx)
		}
		if got, _ := raw.secrets(t, wy.ID); !strings.HasPrefix(got, sealedPrefix(keyB)) {
			t.Fatalf("y: stored %q, want it re-sealed with B", got)
		}
		wantSecret(t, newB, "a", wx.ID, "fresh-x", "")
		wantSecret(t, newB, "a", wy.ID, "fresh-y", "")
	})
}

// waitBlocked returns once the re-encryption is waiting on the locked
// rows: seen in pg_stat_activity on PostgreSQL; on SQLite, where nothing
// shows it, after a pause (its UPDATE waits for the write lock, its read
// does not: WAL).
func waitBlocked(t *testing.T, raw *rawDB) {
	t.Helper()
	if !raw.postgres {
		time.Sleep(300 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := raw.db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("re-encrypt never waited on the locked rows")
}

// fleet is the processes (stores) serving at a moment of a rolling
// deploy. Like a real deploy, replacing a process drains it: it takes no
// new request and is gone once its requests in flight have ended (a
// request still running on an [A, B] process after the step that retired
// it would seal with A after the re-encryption). Retired stores are closed
// when the test ends.
type fleet struct {
	mu       sync.Mutex
	live     []*models.Store
	inFlight map[*models.Store]*sync.WaitGroup
}

func newFleet(stores ...*models.Store) *fleet {
	f := &fleet{live: stores, inFlight: map[*models.Store]*sync.WaitGroup{}}
	for _, s := range stores {
		f.inFlight[s] = &sync.WaitGroup{}
	}
	return f
}

// acquire picks a live process for one request; release ends it.
func (f *fleet) acquire() (s *models.Store, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s = f.live[mrand.IntN(len(f.live))]
	wg := f.inFlight[s]
	wg.Add(1)
	return s, wg.Done
}

// replace puts s in the place of process i and waits for the old one to
// drain.
func (f *fleet) replace(i int, s *models.Store) {
	f.mu.Lock()
	old := f.live[i]
	f.live[i] = s
	f.inFlight[s] = &sync.WaitGroup{}
	wg := f.inFlight[old]
	f.mu.Unlock()
	wg.Wait()
}

// TestSecretKeyRotationWhileServing follows the documented zero-downtime
// procedure with three processes serving webhooks all along: [A] →
// rolling deploy of [A, B] → rolling deploy of [B, A] → reencrypt → rolling
// deploy of [B]. Workers create, update, rotate, read and list webhooks
// through whichever process they pick; at every step every read returns
// the right secrets and nothing fails. Each step waits for traffic before
// the next, so mixed fleets ([A] beside [A, B], [A, B] beside [B, A], ...)
// really serve.
func TestSecretKeyRotationWhileServing(t *testing.T) {
	modelstest.EachDSN(t, func(t *testing.T, s *models.Store, dsn string) {
		ctx := context.Background()
		modelstest.Org(t, s, "a")
		f := newFleet(ringStore(t, dsn, keyA), ringStore(t, dsn, keyA), ringStore(t, dsn, keyA))

		var ops atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		// halt stops the workers, once, before the stores close, on every
		// way out of the test.
		halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
		defer halt()
		workers := make([]*rotationWorker, 4)
		for wi := range workers {
			workers[wi] = &rotationWorker{name: fmt.Sprintf("w%d", wi), mine: map[string]rotationWant{}}
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					st, release := f.acquire()
					err := workers[wi].serve(ctx, st)
					release()
					if err != nil {
						t.Error(err)
						return
					}
					ops.Add(1)
				}
			})
		}
		// traffic waits until the fleet as it stands has served more
		// requests.
		traffic := func(step string) {
			t.Helper()
			from := ops.Load()
			deadline := time.Now().Add(30 * time.Second)
			for ops.Load() < from+40 {
				if t.Failed() || time.Now().After(deadline) {
					halt()
					t.Fatalf("%s: traffic stopped (%d requests)", step, ops.Load()-from)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		traffic("[A]")
		for step, ring := range [][][]byte{{keyA, keyB}, {keyB, keyA}} {
			for i := range f.live {
				f.replace(i, ringStore(t, dsn, ring...))
				traffic(fmt.Sprintf("rollout %d, process %d", step+1, i))
			}
		}
		res, err := ringStore(t, dsn, keyB, keyA).ReencryptSecrets(ctx, 7)
		if err != nil {
			t.Fatalf("re-encrypt while serving: %v", err)
		}
		if res.Rewritten == 0 || res.Scanned < res.Rewritten {
			t.Fatalf("re-encrypt = %+v, want rows rewritten", res)
		}
		traffic("after re-encrypt")
		for i := range f.live {
			f.replace(i, ringStore(t, dsn, keyB))
			traffic(fmt.Sprintf("rollout 3, process %d", i))
		}
		halt()

		raw := openRaw(t, dsn)
		for id, s := range raw.allSealed(t) {
			for _, v := range s {
				if v != "" && !strings.HasPrefix(v, sealedPrefix(keyB)) {
					t.Errorf("webhook %s: %q is not sealed with B", id, v)
				}
			}
		}
		onlyB := ringStore(t, dsn, keyB)
		n := 0
		for _, w := range workers {
			for id, want := range w.mine {
				wantSecret(t, onlyB, "a", id, want.secret, want.prev)
				n++
			}
		}
		t.Logf("%d requests on %d webhooks; re-encrypt: %+v", ops.Load(), n, res)
	})
}

// rotationWant is what a webhook's secrets must read as.
type rotationWant struct{ secret, prev string }

// rotationWorker is one client of TestSecretKeyRotationWhileServing: it
// owns the webhooks it creates (nobody else changes them), so it knows
// what each must read as.
type rotationWorker struct {
	name string
	n    int
	ids  []string
	mine map[string]rotationWant
}

// serve makes one request to st: a create, an update or rotation of the
// secret, a read or a list, and checks what it gets.
func (r *rotationWorker) serve(ctx context.Context, st *models.Store) error {
	r.n++
	secret := fmt.Sprintf("%s-%d", r.name, r.n)
	switch op := mrand.IntN(10); {
	case len(r.ids) < 3 || op == 0:
		w, err := st.CreateWebhook(ctx, "a", models.WebhookUpdate{URL: ptr("https://x.example"), SecretToken: ptr(secret)})
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		r.ids = append(r.ids, w.ID)
		r.mine[w.ID] = rotationWant{secret, ""}
	case op <= 2:
		id := r.ids[mrand.IntN(len(r.ids))]
		w, err := st.UpdateWebhook(ctx, "a", id, models.WebhookUpdate{SecretToken: ptr(secret)})
		if err != nil {
			return fmt.Errorf("update %s: %w", id, err)
		}
		// Setting a secret directly ends the grace window of a previous
		// one (DESIGN §10), or keeps it: either way it is the previous
		// secret this worker knows.
		if p := w.PreviousSecretToken; w.SecretToken != secret || (p != "" && p != r.mine[id].prev) {
			return fmt.Errorf("update %s returned %q / %q", id, w.SecretToken, w.PreviousSecretToken)
		}
		r.mine[id] = rotationWant{secret, w.PreviousSecretToken}
	case op == 3:
		id := r.ids[mrand.IntN(len(r.ids))]
		w, err := st.RotateSecret(ctx, "a", id, secret, time.Hour)
		if err != nil {
			return fmt.Errorf("rotate %s: %w", id, err)
		}
		if want := (rotationWant{secret, r.mine[id].secret}); w.SecretToken != want.secret || w.PreviousSecretToken != want.prev {
			return fmt.Errorf("rotate %s returned %q / %q, want %q / %q", id, w.SecretToken, w.PreviousSecretToken, want.secret, want.prev)
		}
		r.mine[id] = rotationWant{secret, r.mine[id].secret}
	case op == 4:
		list, _, err := st.ListWebhooks(ctx, "a", models.Page{Limit: 1000})
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		for _, w := range list {
			if want, ok := r.mine[w.ID]; ok && (w.SecretToken != want.secret || w.PreviousSecretToken != want.prev) {
				return fmt.Errorf("list: %s has %q / %q, want %q / %q", w.ID, w.SecretToken, w.PreviousSecretToken, want.secret, want.prev)
			}
		}
	default:
		id := r.ids[mrand.IntN(len(r.ids))]
		w, err := st.GetWebhook(ctx, "a", id)
		if err != nil {
			return fmt.Errorf("get %s: %w", id, err)
		}
		if want := r.mine[id]; w.SecretToken != want.secret || w.PreviousSecretToken != want.prev {
			return fmt.Errorf("get %s: %q / %q, want %q / %q", id, w.SecretToken, w.PreviousSecretToken, want.secret, want.prev)
		}
	}
	return nil
}
