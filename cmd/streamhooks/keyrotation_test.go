package main_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// TestMasterKeyRotationWhileDelivering rotates STREAMHOOKS_SECRET_KEY the
// documented way (docs/reliability.md) on the production roles while
// events keep arriving: A → "A,B" → "B,A" → reencrypt → "B", each step a
// rolling restart (new worker first, then the old one stopped, then the
// api). Every delivery must arrive, signed with the right secret, and in
// the end every stored secret is sealed with B.
func TestMasterKeyRotationWhileDelivering(t *testing.T) {
	k := newSink(t, ok(10*time.Millisecond), failFirst(1, 503, 0))
	s := newProdStack(t, modelstest.NewPostgresDatabase(t), "org1")
	endpoints := map[string][]int{"org1": {0, 1}}
	s.hooks("org1", k, 0, 1)
	keyA := base64.StdEncoding.EncodeToString(modelstest.TestSecretKey)
	keyB := models.NewSecretKey()
	rawB, _ := models.ParseSecretKey(keyB)

	setKey := func(v string) {
		for i, e := range s.env {
			if strings.HasPrefix(e, "STREAMHOOKS_SECRET_KEY=") {
				s.env[i] = "STREAMHOOKS_SECRET_KEY=" + v
			}
		}
	}
	var events []event
	for i := range 160 {
		events = append(events, event{"org1", fmt.Sprintf("key-%03d", i)})
	}
	var posted atomic.Int64
	worker := s.startWorker()
	roll := func(key string) {
		t.Helper()
		setKey(key)
		next := s.startWorker()
		time.Sleep(time.Second)
		worker.stop(t)
		worker = next
		s.apiProc.stop(t)
		s.apiProc = startProcess(t, s.env, "api")
		s.procs = append(s.procs, s.apiProc)
		s.waitReady(30 * time.Second)
		t.Logf("rolled to STREAMHOOKS_SECRET_KEY=%s with %d of %d events posted", strings.NewReplacer(keyA, "A", keyB, "B").Replace(key), posted.Load(), len(events))
	}

	want := pairsOf(events, endpoints)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a steady stream across every step
		defer wg.Done()
		for i := 0; i < len(events); i += 10 {
			s.post(events[i:i+10], 2)
			posted.Add(10)
			time.Sleep(300 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	roll(keyA + "," + keyB)
	roll(keyB + "," + keyA)
	re := exec.Command(binary, "reencrypt")
	re.Env = append(os.Environ(), s.env...)
	out, err := re.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "under key "+models.SecretKeyID(rawB)) {
		t.Fatalf("reencrypt: %v %s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
	roll(keyB)
	if posted.Load() == int64(len(events)) {
		t.Errorf("every event was posted before the last step: the rotation did not overlap the traffic")
	}
	wg.Wait()
	k.waitAll(want, 3*time.Minute)
	s.checkRows(len(want))
	noPanic(t, "worker", worker)
	noPanic(t, "api", s.apiProc)

	db, err := sql.Open("pgx", s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var notB int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM webhooks WHERE secret_token NOT LIKE $1`,
		"enc:v2:"+models.SecretKeyID(rawB)+":%").Scan(&notB); err != nil || notB != 0 {
		t.Fatalf("%d webhook secrets not sealed with the new key (%v)", notB, err)
	}
}
