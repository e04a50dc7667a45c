package models_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// TestDeadlockVictimIsRetried makes PostgreSQL pick a store transaction as
// a deadlock victim (the lock-order inversion of an attempt, which locks
// its delivery then its webhook, against a webhook delete, which locks the
// webhook then its deliveries) and checks that the store runs it again
// instead of answering a 500.
func TestDeadlockVictimIsRetried(t *testing.T) {
	dsn := modelstest.NewPostgresDatabase(t)
	ctx := context.Background()
	s, err := models.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TABLE lock_a (id int PRIMARY KEY, n int); CREATE TABLE lock_b (id int PRIMARY KEY, n int);
		INSERT INTO lock_a VALUES (1, 0); INSERT INTO lock_b VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}

	other, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The other side waits longer before it checks for a deadlock, so the
	// store's transaction (deadlock_timeout 1 s) is the one aborted.
	if _, err := other.Exec(`SET LOCAL deadlock_timeout = '20s'; UPDATE lock_b SET n = n + 1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	locked := make(chan struct{}, 1)
	done := make(chan error, 1)
	tries := 0
	go func() {
		done <- s.Transact(ctx, func(tx *gorm.DB) error {
			tries++
			if err := tx.Exec(`UPDATE lock_a SET n = n + 1 WHERE id = 1`).Error; err != nil {
				return err
			}
			select {
			case locked <- struct{}{}:
			default:
			}
			return tx.Exec(`UPDATE lock_b SET n = n + 1 WHERE id = 1`).Error
		})
	}()
	<-locked
	time.Sleep(200 * time.Millisecond) // the store's transaction now waits for lock_b
	if _, err := other.Exec(`UPDATE lock_a SET n = n + 1 WHERE id = 1`); err != nil {
		t.Fatalf("the other transaction was the victim: %v", err)
	}
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("store transaction: %v, want it retried after the deadlock", err)
	}
	if tries != 2 {
		t.Fatalf("store transaction ran %d times, want 2 (aborted once, then committed)", tries)
	}
	var a, b int
	if err := raw.QueryRow(`SELECT (SELECT n FROM lock_a), (SELECT n FROM lock_b)`).Scan(&a, &b); err != nil {
		t.Fatal(err)
	}
	if a != 2 || b != 2 {
		t.Fatalf("counters %d, %d; want 2, 2 (each transaction committed once)", a, b)
	}
}
