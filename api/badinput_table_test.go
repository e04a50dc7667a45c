package api_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/api"
	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
	"github.com/streamhooks/streamhooks/service"
	"github.com/streamhooks/streamhooks/workflows"
)

// This file holds the bad-input table of every route and the tenant
// isolation test of every route × verb. Both run against real PostgreSQL and
// SQLite and compare a snapshot of every table (not only webhooks) before
// and after each rejected request.
//
// Behaviours pinned here that the contract leaves open:
//   - Duplicate JSON keys: the last occurrence wins, at every level (the
//     body, and the asset when its id and status are read), exactly as
//     encoding/json decodes into a map. The asset bytes are still stored and
//     delivered verbatim, duplicates included.
//   - Unknown fields (id, organization_id, created, modified,
//     deactivated_reason, deleted_at, kind, workflow_id, ...) are ignored,
//     never applied; keys are case-sensitive, so "URL" is unknown too. A PATCH
//     of unknown fields only (or {}) is a 200 that changes nothing but
//     "modified".
//   - Deep nesting: up to encoding/json's limit of 10000 levels a body is
//     parsed (so 10000 nested arrays are "a list", 400; inside a field, a
//     wrong type, 400; inside an asset, valid and stored verbatim); deeper is
//     a 400 JSON parse error.
//   - An empty (or all-space) body is an empty object whatever its content
//     type, as in DRF; a body without a Content-Type is parsed as JSON.
//   - The size limit is checked before the content type: 2 MiB of text/plain
//     is a 413, not a 415.
//   - PUT and PATCH look the webhook up before reading the body: an unknown id
//     is a 404 whatever the body (even an oversized one).
//   - Path ids are compared as stored: the upper-case or braced form of a
//     real webhook UUID is a 404, like any unknown id.
//   - Pagination is never an error (DRF's LimitOffsetPagination): a bad
//     limit is 50, a bad offset 0, and a huge offset an empty last page with
//     no "next".
//   - Repeated query parameters: the first wins (?status=pending&status=x).

// eachDB is modelstest.EachDSN plus a plain database/sql connection to the
// same database: the snapshot below must see every row of every table (as
// worker/e2e_test.go's rawRows does), and the store keeps its *gorm.DB to
// itself.
func eachDB(t *testing.T, f func(t *testing.T, s *models.Store, db *sql.DB)) {
	t.Helper()
	modelstest.EachDSN(t, func(t *testing.T, s *models.Store, dsn string) {
		driver, raw := "pgx", dsn
		if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
			driver, raw = "sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=busy_timeout(10000)"
		}
		db, err := sql.Open(driver, raw)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		f(t, s, db)
	})
}

// startRecorder is the Workflows and Outbox dependency of these tests: it
// records each start and notification instead of asking a Temporal server. (A real Starter needs a
// server; temporaltest would compile all of Temporal into this package's
// tests, and worker/e2e_test.go already covers real starts.) Its counts are
// part of the snapshot: a rejected request must start nothing.
type startRecorder struct {
	mu           sync.Mutex
	events       []string
	redeliveries []service.RedeliveryStart
}

func (r *startRecorder) Notify(ev models.AssetEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev.ID)
}

func (r *startRecorder) StartRedelivery(_ context.Context, s service.RedeliveryStart) (models.WorkflowRun, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redeliveries = append(r.redeliveries, s)
	return models.WorkflowRun{WorkflowID: s.WorkflowID, RunID: "run-" + strconv.Itoa(len(r.redeliveries))}, nil
}

func (r *startRecorder) StartRecovery(_ context.Context, rec *models.Recovery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redeliveries = append(r.redeliveries, service.RedeliveryStart{WorkflowID: rec.WorkflowID})
	return nil
}

func (r *startRecorder) counts() (events, redeliveries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events), len(r.redeliveries)
}

// world is a fixture with a row in every table: webhooks of a (active,
// deactivated, deleted) and of b, events, pending, succeeded and failed
// deliveries, and attempts. The API has a start recorder for Workflows and real activities
// (loopback allowed) for pings, which reach a local receiver.
type world struct {
	*fixture
	db      *sql.DB
	starts  *startRecorder
	pings   *atomic.Int64 // requests the receiver got
	recvURL string
	revoked string // a revoked customer token of organization c

	hookA, hookOff, hookGone, hookB string // a's active, deactivated and deleted webhooks; b's
	evA, evA2, evB                  string
	dDone                           string // a's succeeded delivery to hookA, with one attempt
	dOff                            string // a's failed delivery to hookOff (now inactive)
	dGone                           string // a's failed delivery to hookGone (now deleted)
	dPending                        string // a's pending delivery to hookA
	dB                              string // b's failed delivery, with one attempt
}

func newWorld(t *testing.T, s *models.Store, db *sql.DB) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{fixture: newFixture(t, s), db: db, starts: &startRecorder{}, pings: &atomic.Int64{}}
	recv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.pings.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		rw.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(recv.Close)
	w.recvURL = recv.URL
	acts := activities.New(activities.Config{Store: s, Guard: egress.NewGuard(egress.LoopbackCIDRs), AttemptTimeout: 5 * time.Second})
	w.handler = api.New(api.Config{Store: s, Workflows: w.starts, Outbox: w.starts, Attempter: acts})

	w.revoked = modelstest.Org(t, s, "c")
	if err := s.RevokeToken(ctx, w.revoked); err != nil {
		t.Fatal(err)
	}
	w.hookA = w.create(recv.URL + "/a")
	w.hookOff = w.create(recv.URL + "/off")
	w.hookGone = w.create(recv.URL + "/gone")
	r := w.do("POST", "/api/v1/b/webhooks/", w.tokB, map[string]string{"url": recv.URL + "/b", "secret_token": "b-secret"})
	if r.status != http.StatusCreated {
		t.Fatalf("create b's webhook: %d %s", r.status, r.body)
	}
	w.hookB = r.json(t)["id"].(string)

	w.evA = w.event("a", "evt-a", "vid_a")
	ds := w.deliveries(w.evA)
	w.dDone, w.dOff, w.dGone = ds[w.hookA], ds[w.hookOff], ds[w.hookGone]
	w.attempt(w.dDone, 200, models.DeliverySucceeded)
	w.attempt(w.dOff, 500, models.DeliveryFailed)
	w.attempt(w.dGone, 500, models.DeliveryFailed)
	if r := w.do("PATCH", "/api/v1/a/webhooks/"+w.hookOff+"/", w.tokA, map[string]any{"is_active": false}); r.status != 200 {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	if r := w.do("DELETE", "/api/v1/a/webhooks/"+w.hookGone+"/", w.tokA, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	w.evA2 = w.event("a", "evt-a-2", "vid_a2")
	w.dPending = w.deliveries(w.evA2)[w.hookA]
	w.evB = w.event("b", "evt-b", "vid_b")
	w.dB = w.deliveries(w.evB)[w.hookB]
	w.attempt(w.dB, 503, models.DeliveryFailed)
	// A row in each table of ordering, recovery and retention, so that
	// "nothing changed" covers them too.
	for _, q := range []string{
		"INSERT INTO delivery_turns (webhook_id, asset_id, sent_sequence) VALUES ('" + w.hookA + "', 'vid_a', 1)",
		"INSERT INTO recoveries (id, organization_id, webhook_id, since, workflow_id, state, planned, created_at, updated_at) VALUES " +
			"('rec_fixture', 'a', '" + w.hookA + "', '2026-01-01 00:00:00+00:00', 'recover:rec_fixture', 'completed', true, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')",
		"INSERT INTO recovery_items (recovery_id, delivery_id, state) VALUES ('rec_fixture', '" + w.dDone + "', 'succeeded')",
		"INSERT INTO asset_sequences (organization_id, asset_id, last_sequence) VALUES ('a', 'vid_purged', 3)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("fixture: %v", err)
		}
	}
	for _, id := range []string{w.dDone, w.dOff, w.dGone, w.dPending, w.dB} {
		if id == "" {
			t.Fatal("fixture: a delivery is missing")
		}
	}
	return w
}

// event stores an asset event whose workflow is already started, as the API
// leaves it after a successful start.
func (w *world) event(org, id, assetID string) string {
	w.t.Helper()
	ts := time.Now().UTC()
	ev := &models.AssetEvent{
		ID: id, OrganizationID: org, AssetID: assetID, AssetStatus: "Completed",
		Payload: []byte(`{"id": "` + assetID + `", "video": {"status": "Completed"}}`), WorkflowID: workflows.WorkflowID(id), WorkflowStartedAt: &ts,
	}
	if _, _, err := w.store.CreateEvent(context.Background(), ev); err != nil {
		w.t.Fatal(err)
	}
	return id
}

// deliveries creates the event's deliveries and returns their ids by webhook.
func (w *world) deliveries(eventID string) map[string]string {
	w.t.Helper()
	ds, err := w.store.CreateDeliveries(context.Background(), eventID, models.WorkflowRun{WorkflowID: workflows.WorkflowID(eventID), RunID: "run-0"})
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range ds {
		out[d.WebhookID] = d.ID
	}
	return out
}

// attempt records attempt 1 of a delivery and moves it to state.
func (w *world) attempt(deliveryID string, status int, state models.DeliveryState) {
	w.t.Helper()
	ts := time.Now().UTC()
	a := &models.DeliveryAttempt{
		DeliveryID: deliveryID, AttemptNumber: 1, RequestURL: w.recvURL + "/", RequestHeaders: `{"x-streams-token": "********"}`,
		ResponseStatus: status, ResponseHeaders: `{}`, ResponseBody: []byte("answer"), DurationMS: 3, StartedAt: ts, FinishedAt: ts,
	}
	if status >= 300 {
		a.ErrorClass = models.ErrorClassHTTP
	}
	if err := w.store.RecordAttempt(context.Background(), models.AttemptRecord{Attempt: a, Outcome: models.AttemptOutcome{State: state}}); err != nil {
		w.t.Fatal(err)
	}
}

// snapshotTables are every table of the schema (but the migrations'
// bookkeeping).
var snapshotTables = []string{"organizations", "api_tokens", "webhooks", "asset_events", "deliveries", "delivery_attempts",
	"delivery_turns", "recoveries", "recovery_items", "asset_sequences"}

// snapshot captures every row of every table, exactly as stored (secrets
// encrypted with a random nonce, so even a re-write of the same secret
// shows), plus the workflow starts and the pings sent.
func (w *world) snapshot() string {
	w.t.Helper()
	var b strings.Builder
	for _, table := range snapshotTables {
		fmt.Fprintf(&b, "%s:\n", table)
		for _, row := range w.rows(table, "") {
			raw, _ := json.Marshal(row)
			b.Write(raw)
			b.WriteByte('\n')
		}
	}
	ev, re := w.starts.counts()
	fmt.Fprintf(&b, "event starts %d, redelivery starts %d, pings sent %d\n", ev, re, w.pings.Load())
	return b.String()
}

// rows returns the rows of a table (only the one with id when id is set),
// column by column.
func (w *world) rows(table, id string) []map[string]any {
	w.t.Helper()
	q, args := "SELECT * FROM "+table, []any{}
	if id != "" {
		q += " WHERE id = " + map[bool]string{true: "$1", false: "?"}[w.store.Dialect() == models.DialectPostgres]
		args = append(args, id)
	}
	// Tables keyed by several columns are ordered by all of them.
	order := map[string]string{"delivery_turns": "webhook_id, asset_id", "recovery_items": "recovery_id, delivery_id",
		"asset_sequences": "organization_id, asset_id"}[table]
	if order == "" {
		order = "id"
	}
	rows, err := w.db.Query(q+" ORDER BY "+order, args...)
	if err != nil {
		w.t.Fatalf("snapshot %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		w.t.Fatal(err)
	}
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			w.t.Fatal(err)
		}
		row := map[string]any{}
		for i, c := range cols {
			if b, ok := vals[i].([]byte); ok {
				vals[i] = string(b) // compare bytes as bytes, and readably
			}
			row[c] = vals[i]
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) row(table, id string) map[string]any {
	w.t.Helper()
	rows := w.rows(table, id)
	if len(rows) != 1 {
		w.t.Fatalf("%s %s: %d rows", table, id, len(rows))
	}
	return rows[0]
}

// Auth values of a badCase.
const (
	authDefault = ""  // the customer token of a on /api, the service token on /internal
	authNone    = "-" // no Authorization header
)

// badCase is one request the API must reject.
type badCase struct {
	name   string
	method string
	path   string
	auth   string // authDefault, authNone or the whole header value
	ctype  string // Content-Type; "" is application/json when there is a body
	body   any    // nil (no body) or a string sent verbatim
	status int
	want   string // the exact JSON body; "" means a JSON parse error detail
}

// DRF's messages, as JSON lists.
const (
	required   = `["This field is required."]`
	null       = `["This field may not be null."]`
	blank      = `["This field may not be blank."]`
	notString  = `["Not a valid string."]`
	notBool    = `["Must be a valid boolean."]`
	invalidURL = `["Enter a valid URL."]`
	control    = `["This field may not contain control characters (such as CR, LF, tab or NUL)."]`
	needsID    = `["The asset needs a non-empty string \"id\"."]`
	printable  = `["The asset \"id\" must be at most 200 printable characters."]`
	notObject  = `["Expected a JSON object."]`

	notProvided  = `{"detail": "Authentication credentials were not provided."}`
	invalidToken = `{"detail": "Invalid token."}`
	orgNotFound  = `{"detail": "The requested resource was not found on this server."}`
	notFound     = `{"detail": "Not found."}`
	forbidden    = `{"detail": "You do not have permission to perform this action."}`
	tooLarge     = `{"detail": "Request body is too large: the limit is 1048576 bytes."}`
	notUTF8      = `{"detail": "JSON parse error - the body is not valid UTF-8"}`
	parseError   = "" // want: {"detail": "JSON parse error - ..."}
)

// fe builds a field-error body from field, messages pairs.
func fe(pairs ...string) string {
	parts := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		parts = append(parts, strconv.Quote(pairs[i])+": "+pairs[i+1])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func nonField(typ string) string {
	return `{"non_field_errors": ["Invalid data. Expected a dictionary, but got ` + typ + `."]}`
}

func unsupported(ct string) string {
	raw, _ := json.Marshal(map[string]string{"detail": `Unsupported media type "` + ct + `" in request.`})
	return string(raw)
}

func notAllowed(method string) string { return `{"detail": "Method \"` + method + `\" not allowed."}` }

// nested returns n nested JSON arrays.
func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// send makes a badCase's request.
func (w *world) send(tc badCase) response {
	w.t.Helper()
	auth := tc.auth
	if auth == authDefault {
		auth = "Token " + w.tokA
		if strings.HasPrefix(tc.path, "/internal/") {
			auth = "Token " + w.svc
		}
	} else if auth == authNone {
		auth = ""
	}
	hdr := []string{"Authorization", auth}
	if tc.ctype != "" {
		hdr = append(hdr, "Content-Type", tc.ctype)
	}
	return w.do(tc.method, tc.path, "", tc.body, hdr...)
}

// badCases is the table: every route, every kind of bad input.
func (w *world) badCases() []badCase {
	list := "/api/v1/a/webhooks/"
	one := list + w.hookA + "/"
	dels := one + "deliveries/"
	ping := one + "ping/"
	detail := "/api/v1/a/deliveries/" + w.dDone + "/"
	redo := detail + "redeliver/"
	rotate := one + "rotate-secret/"
	recov := one + "recover/"
	recovery := one + "recoveries/rec_0123456789abcdef01234567/"
	const since = `{"since": "2026-01-01T00:00:00Z"}`
	const events = "/internal/v1/asset-events/"
	const hook = `{"url": "https://example.com/new", "secret_token": "s"}`
	const ev = `{"organization_id": "a", "asset": {"id": "vid_new", "video": {"status": "Completed"}}}`
	const asset = `"asset": {"id": "vid_new"}`
	big := strings.Repeat("k", 1<<20)
	sqlish := url.PathEscape("'; DROP TABLE webhooks; --")

	var cs []badCase
	add := func(c ...badCase) { cs = append(cs, c...) }

	// Authentication and authorization, on every route and verb. Bodies are
	// valid, so only the credentials are wrong.
	routes := []struct{ method, path, body string }{
		{"POST", list, hook}, {"GET", list, ""}, {"GET", one, ""}, {"PUT", one, hook}, {"PATCH", one, `{"secret_token": "x"}`},
		{"DELETE", one, ""}, {"GET", dels, ""}, {"POST", ping, ""}, {"GET", detail, ""}, {"POST", redo, ""}, {"POST", events, ev},
		{"POST", rotate, ""}, {"POST", recov, since}, {"GET", recovery, ""},
	}
	for _, r := range routes {
		var body any
		if r.body != "" {
			body = r.body
		}
		rt := r.method + " " + strings.Replace(strings.Replace(r.path, w.hookA, ":id", 1), w.dDone, ":delivery", 1)
		add(badCase{"no Authorization on " + rt, r.method, r.path, authNone, "", body, 401, notProvided})
		if r.method == "PUT" || r.path == events {
			add(badCase{"unknown token on " + rt, r.method, r.path, "Token shk_0000000000000000", "", body, 401, invalidToken})
		}
		if r.path != events {
			add(badCase{"service token on " + rt, r.method, r.path, "Token " + w.svc, "", body, 404, orgNotFound})
		}
	}
	add(
		badCase{"revoked token", "GET", list, "Token " + w.revoked, "", nil, 401, invalidToken},
		badCase{"Bearer scheme", "POST", list, "Bearer " + w.tokA, "", hook, 401, notProvided},
		badCase{"keyword without token", "DELETE", one, "Token", "", nil, 401, `{"detail": "Invalid token header. No credentials provided."}`},
		badCase{"token with a space", "POST", events, "Token " + w.svc + " x", "", ev, 401, `{"detail": "Invalid token header. Token string should not contain spaces."}`},
		badCase{"token of another case", "PATCH", one, "Token " + strings.ToUpper(w.tokA), "", `{"secret_token": "x"}`, 401, invalidToken},
		badCase{"customer token of a on events", "POST", events, "Token " + w.tokA, "", ev, 403, forbidden},
		badCase{"customer token of b on events", "POST", events, "Token " + w.tokB, "", ev, 403, forbidden},
	)

	// The organization in the path.
	for _, org := range []string{"ghost", "A", url.PathEscape("a' OR '1'='1")} {
		add(badCase{"organization " + org + " on POST webhooks", "POST", "/api/v1/" + org + "/webhooks/", authDefault, "", hook, 404, orgNotFound})
	}
	add(badCase{"unknown organization on redeliver", "POST", "/api/v1/ghost/deliveries/" + w.dDone + "/redeliver/", authDefault, "", nil, 404, orgNotFound})

	// Routing: wrong verbs and paths without their final slash.
	add(
		badCase{"POST on a webhook", "POST", one, authDefault, "", hook, 405, notAllowed("POST")},
		badCase{"PUT on the list", "PUT", list, authDefault, "", hook, 405, notAllowed("PUT")},
		badCase{"DELETE on deliveries", "DELETE", dels, authDefault, "", nil, 405, notAllowed("DELETE")},
		badCase{"GET on ping", "GET", ping, authDefault, "", nil, 405, notAllowed("GET")},
		badCase{"DELETE on a delivery", "DELETE", detail, authDefault, "", nil, 405, notAllowed("DELETE")},
		badCase{"GET on redeliver", "GET", redo, authDefault, "", nil, 405, notAllowed("GET")},
		badCase{"GET on events", "GET", events, authDefault, "", nil, 405, notAllowed("GET")},
		badCase{"no final slash on redeliver", "POST", strings.TrimSuffix(redo, "/"), authDefault, "", nil, 404, notFound},
		badCase{"no final slash on events", "POST", strings.TrimSuffix(events, "/"), authDefault, "", ev, 404, notFound},
	)

	// Create: the body as a whole.
	add(
		badCase{"malformed JSON", "POST", list, authDefault, "", `{"url": `, 400, parseError},
		badCase{"trailing garbage", "POST", list, authDefault, "", hook + ` x`, 400, parseError},
		badCase{"NaN", "POST", list, authDefault, "", `{"url": NaN, "secret_token": "s"}`, 400, parseError},
		badCase{"raw LF inside a string", "POST", list, authDefault, "", "{\"url\": \"https://x.example\", \"secret_token\": \"a\nb\"}", 400, parseError},
		badCase{"byte order mark", "POST", list, authDefault, "", "\ufeff" + hook, 400, parseError},
		badCase{"array", "POST", list, authDefault, "", `[` + hook + `]`, 400, nonField("list")},
		badCase{"string", "POST", list, authDefault, "", `"https://x.example"`, 400, nonField("str")},
		badCase{"integer", "POST", list, authDefault, "", `7`, 400, nonField("int")},
		badCase{"null", "POST", list, authDefault, "", `null`, 400, nonField("NoneType")},
		badCase{"10000 nested arrays", "POST", list, authDefault, "", nested(10000), 400, nonField("list")},
		badCase{"100000 nested arrays", "POST", list, authDefault, "", nested(100000), 400, parseError},
		badCase{"empty body", "POST", list, authDefault, "", ``, 400, fe("url", required, "secret_token", required)},
		badCase{"blank body of another type", "POST", list, authDefault, "text/plain", " \r\n\t ", 400, fe("url", required, "secret_token", required)},
		badCase{"empty object", "POST", list, authDefault, "", `{}`, 400, fe("url", required, "secret_token", required)},
		badCase{"keys are case-sensitive", "POST", list, authDefault, "", `{"URL": "https://x.example", "Secret_Token": "s"}`, 400, fe("url", required, "secret_token", required)},
		badCase{"invalid UTF-8 in a value", "POST", list, authDefault, "", "{\"url\": \"https://x.example\", \"secret_token\": \"\xff\xfe\"}", 400, notUTF8},
		badCase{"invalid UTF-8 in an unknown field", "POST", list, authDefault, "", "{\"url\": \"https://x.example\", \"secret_token\": \"s\", \"note\": \"\xed\xa0\x80\"}", 400, notUTF8},
		badCase{"text/plain", "POST", list, authDefault, "text/plain", hook, 415, unsupported("text/plain")},
		badCase{"form", "POST", list, authDefault, "application/x-www-form-urlencoded", "url=https%3A%2F%2Fx.example&secret_token=s", 415, unsupported("application/x-www-form-urlencoded")},
		badCase{"json prefix of another type", "POST", list, authDefault, "application/jsonx", hook, 415, unsupported("application/jsonx")},
		badCase{"malformed media type parameter", "POST", list, authDefault, "application/json; charset", hook, 415, unsupported("application/json; charset")},
		badCase{"1 MiB + 1 byte", "POST", list, authDefault, "", hook + strings.Repeat(" ", 1<<20+1-len(hook)), 413, tooLarge},
		badCase{"2 MiB of text/plain", "POST", list, authDefault, "text/plain", big + big, 413, tooLarge},
	)

	// Create: every field, every wrong type and value.
	add(
		badCase{"missing url", "POST", list, authDefault, "", `{"secret_token": "s"}`, 400, fe("url", required)},
		badCase{"missing secret", "POST", list, authDefault, "", `{"url": "https://x.example"}`, 400, fe("secret_token", required)},
		badCase{"url null", "POST", list, authDefault, "", `{"url": null, "secret_token": "s"}`, 400, fe("url", null)},
		badCase{"url number", "POST", list, authDefault, "", `{"url": 80, "secret_token": "s"}`, 400, fe("url", notString)},
		badCase{"url array", "POST", list, authDefault, "", `{"url": ["https://x.example"], "secret_token": "s"}`, 400, fe("url", notString)},
		badCase{"url 5000 nested arrays", "POST", list, authDefault, "", `{"url": ` + nested(5000) + `, "secret_token": "s"}`, 400, fe("url", notString)},
		badCase{"secret null", "POST", list, authDefault, "", `{"url": "https://x.example", "secret_token": null}`, 400, fe("secret_token", null)},
		badCase{"secret number", "POST", list, authDefault, "", `{"url": "https://x.example", "secret_token": 1234}`, 400, fe("secret_token", notString)},
		badCase{"is_active string", "POST", list, authDefault, "", `{"url": "https://x.example", "secret_token": "s", "is_active": "true"}`, 400, fe("is_active", notBool)},
		badCase{"is_active null", "POST", list, authDefault, "", `{"url": "https://x.example", "secret_token": "s", "is_active": null}`, 400, fe("is_active", notBool)},
		badCase{"every field wrong", "POST", list, authDefault, "", `{"url": 1, "secret_token": {}, "is_active": []}`, 400, fe("url", notString, "secret_token", notString, "is_active", notBool)},
		badCase{"blank url", "POST", list, authDefault, "", `{"url": "", "secret_token": "s"}`, 400, fe("url", blank)},
		badCase{"blank secret", "POST", list, authDefault, "", `{"url": "https://x.example", "secret_token": ""}`, 400, fe("secret_token", blank)},
		badCase{"file url", "POST", list, authDefault, "", `{"url": "file:///etc/passwd", "secret_token": "s"}`, 400, fe("url", invalidURL)},
		badCase{"url without host", "POST", list, authDefault, "", `{"url": "https:///h", "secret_token": "s"}`, 400, fe("url", invalidURL)},
		badCase{"port 0", "POST", list, authDefault, "", `{"url": "https://x.example:0/", "secret_token": "s"}`, 400, fe("url", invalidURL)},
		badCase{"backslash", "POST", list, authDefault, "", `{"url": "https://x.example\\@evil.example/", "secret_token": "s"}`, 400, fe("url", invalidURL)},
		badCase{"CR LF in url", "POST", list, authDefault, "", `{"url": "https://x.example/\r\nX-Evil: 1", "secret_token": "s"}`, 400, fe("url", control)},
		badCase{"CR LF in secret", "POST", list, authDefault, "", `{"url": "https://x.example", "secret_token": "s\r\nX-Evil: 1"}`, 400, fe("secret_token", control)},
		badCase{"NUL in secret", "POST", list, authDefault, "", `{"url": "https://x.example", "secret_token": "s\u0000"}`, 400, fe("secret_token", control)},
		badCase{"lone surrogate in secret", "POST", list, authDefault, "", `{"url": "https://x.example", "secret_token": "s\ud800"}`, 400, fe("secret_token", control)},
		badCase{"2049-character url", "POST", list, authDefault, "", `{"url": "https://x.example/` + strings.Repeat("a", 2049-len("https://x.example/")) + `", "secret_token": "s"}`, 400, fe("url", `["Ensure this field has no more than 2048 characters."]`)},
		badCase{"256-character secret", "POST", list, authDefault, "", `{"url": "https://x.example", "secret_token": "` + strings.Repeat("é", 256) + `"}`, 400, fe("secret_token", `["Ensure this field has no more than 255 characters."]`)},
		badCase{"duplicate url key, last invalid", "POST", list, authDefault, "", `{"url": "https://x.example", "url": 5, "secret_token": "s"}`, 400, fe("url", notString)},
		badCase{"duplicate secret key, last null", "POST", list, authDefault, "", `{"url": "https://x.example", "secret_token": "s", "secret_token": null}`, 400, fe("secret_token", null)},
	)

	// PUT and PATCH.
	add(
		badCase{"PUT malformed JSON", "PUT", one, authDefault, "", `{`, 400, parseError},
		badCase{"PUT empty body", "PUT", one, authDefault, "", ``, 400, fe("url", required, "secret_token", required)},
		badCase{"PUT without secret", "PUT", one, authDefault, "", `{"url": "https://x.example"}`, 400, fe("secret_token", required)},
		badCase{"PUT LF in secret", "PUT", one, authDefault, "", `{"url": "https://x.example", "secret_token": "a\nb"}`, 400, fe("secret_token", control)},
		badCase{"PUT text/plain", "PUT", one, authDefault, "text/plain", hook, 415, unsupported("text/plain")},
		badCase{"PUT oversized", "PUT", one, authDefault, "", `{"url": "https://x.example", "secret_token": "` + big + `"}`, 413, tooLarge},
		badCase{"PUT invalid UTF-8", "PUT", one, authDefault, "", "{\"url\": \"https://x.example/\xff\", \"secret_token\": \"s\"}", 400, notUTF8},
		badCase{"PATCH array", "PATCH", one, authDefault, "", `[{"secret_token": "s"}]`, 400, nonField("list")},
		badCase{"PATCH invalid url", "PATCH", one, authDefault, "", `{"url": "nope"}`, 400, fe("url", invalidURL)},
		badCase{"PATCH CR in url", "PATCH", one, authDefault, "", `{"url": "https://x.example/\r"}`, 400, fe("url", control)},
		badCase{"PATCH numeric secret", "PATCH", one, authDefault, "", `{"secret_token": 5}`, 400, fe("secret_token", notString)},
		badCase{"PATCH is_active string", "PATCH", one, authDefault, "", `{"is_active": "false"}`, 400, fe("is_active", notBool)},
		badCase{"PATCH valid field beside an invalid one", "PATCH", one, authDefault, "", `{"secret_token": "fine", "is_active": "no"}`, 400, fe("is_active", notBool)},
		badCase{"PATCH duplicate is_active, last invalid", "PATCH", one, authDefault, "", `{"is_active": false, "is_active": "x"}`, 400, fe("is_active", notBool)},
		badCase{"PATCH oversized", "PATCH", one, authDefault, "", `{"secret_token": "` + big + `"}`, 413, tooLarge},
	)

	// Bad webhook ids, on every route that takes one. The body is valid.
	ids := []string{"not-a-uuid", "%00", w.hookGone}
	for _, bad := range ids {
		p := "/api/v1/a/webhooks/" + bad + "/"
		add(badCase{"PUT id " + bad, "PUT", p, authDefault, "", hook, 404, notFound},
			badCase{"PATCH id " + bad, "PATCH", p, authDefault, "", `{"is_active": false}`, 404, notFound},
			badCase{"DELETE id " + bad, "DELETE", p, authDefault, "", nil, 404, notFound},
			badCase{"deliveries of id " + bad, "GET", p + "deliveries/", authDefault, "", nil, 404, notFound},
			badCase{"ping id " + bad, "POST", p + "ping/", authDefault, "", nil, 404, notFound})
	}
	for _, bad := range []string{"%FF", w.hookA + "x", strings.ToUpper(w.hookA), "{" + w.hookA + "}", sqlish, w.hookB} {
		add(badCase{"GET id " + bad, "GET", "/api/v1/a/webhooks/" + bad + "/", authDefault, "", nil, 404, notFound})
	}
	add(badCase{"PUT oversized on an unknown id", "PUT", "/api/v1/a/webhooks/" + w.hookGone + "/", authDefault, "", `{"url": "https://x.example", "secret_token": "` + big + `"}`, 404, notFound})

	// Bad delivery ids.
	for _, bad := range []string{"%00", "%FF", w.dDone + "%00", "msg_", strings.ToUpper(w.dDone)} {
		p := "/api/v1/a/deliveries/" + bad + "/"
		add(badCase{"GET delivery " + bad, "GET", p, authDefault, "", nil, 404, notFound},
			badCase{"redeliver " + bad, "POST", p + "redeliver/", authDefault, "", nil, 404, notFound})
	}
	for _, bad := range []string{"not-a-delivery", sqlish, w.dB, w.evA} {
		add(badCase{"GET delivery " + bad, "GET", "/api/v1/a/deliveries/" + bad + "/", authDefault, "", nil, 404, notFound})
	}
	const inactive = `{"detail": "The webhook is deleted or inactive; re-enable it (is_active) before redelivering."}`
	add(
		badCase{"redeliver a pending delivery", "POST", "/api/v1/a/deliveries/" + w.dPending + "/redeliver/", authDefault, "", nil, 409, `{"detail": "The delivery is still in progress."}`},
		badCase{"redeliver to an inactive webhook", "POST", "/api/v1/a/deliveries/" + w.dOff + "/redeliver/", authDefault, "", nil, 409, inactive},
		badCase{"redeliver to a deleted webhook", "POST", "/api/v1/a/deliveries/" + w.dGone + "/redeliver/", authDefault, "", nil, 409, inactive},
	)

	// Delivery list filters (bad pagination is never an error: see
	// TestBadInputTableAccepted).
	for _, st := range []string{"PENDING", "pending' OR '1'='1", "\x00", "\xff"} {
		msg, _ := json.Marshal(map[string][]string{"status": {"Select a valid choice. " + st + " is not one of the available choices."}})
		add(badCase{"status " + strconv.Quote(st), "GET", dels + "?status=" + url.QueryEscape(st), authDefault, "", nil, 400, string(msg)})
	}
	// No asset id can hold these (and PostgreSQL cannot compare NUL or
	// invalid UTF-8): refused like a body field.
	for _, id := range []string{"\x00", "\xff", "vid_a\x00", "vid\ta"} {
		add(badCase{"asset_id " + strconv.Quote(id), "GET", dels + "?asset_id=" + url.QueryEscape(id), authDefault, "", nil, 400, fe("asset_id", control)})
	}

	// Asset events.
	add(
		badCase{"event empty body", "POST", events, authDefault, "", ``, 400, fe("organization_id", required, "asset", required)},
		badCase{"event array", "POST", events, authDefault, "", `[` + ev + `]`, 400, nonField("list")},
		badCase{"event malformed", "POST", events, authDefault, "", `{"organization_id": "a",`, 400, parseError},
		badCase{"event invalid UTF-8 in the asset", "POST", events, authDefault, "", "{\"organization_id\": \"a\", \"asset\": {\"id\": \"v\xff\"}}", 400, notUTF8},
		badCase{"event text/plain", "POST", events, authDefault, "text/plain", ev, 415, unsupported("text/plain")},
		badCase{"event oversized asset", "POST", events, authDefault, "", `{"organization_id": "a", "asset": {"id": "v", "title": "` + big + `"}}`, 413, tooLarge},
		badCase{"event nested too deep", "POST", events, authDefault, "", `{"organization_id": "a", "asset": {"id": "v", "deep": ` + nested(10000) + `}}`, 400, parseError},
		badCase{"event every field wrong", "POST", events, authDefault, "", `{"organization_id": 1, "event_id": 2, "asset": 3}`, 400, fe("organization_id", notString, "event_id", notString, "asset", notObject)},
		badCase{"organization_id missing", "POST", events, authDefault, "", `{` + asset + `}`, 400, fe("organization_id", required)},
		badCase{"organization_id blank", "POST", events, authDefault, "", `{"organization_id": " ", ` + asset + `}`, 400, fe("organization_id", blank)},
		badCase{"organization_id CR LF", "POST", events, authDefault, "", `{"organization_id": "a\r\n", ` + asset + `}`, 400, fe("organization_id", control)},
		badCase{"organization_id unknown", "POST", events, authDefault, "", `{"organization_id": "ghost", ` + asset + `}`, 404, notFound},
		badCase{"organization_id SQL", "POST", events, authDefault, "", `{"organization_id": "a' OR '1'='1", ` + asset + `}`, 404, notFound},
		badCase{"organization_id duplicate, last null", "POST", events, authDefault, "", `{"organization_id": "a", "organization_id": null, ` + asset + `}`, 400, fe("organization_id", null)},
		badCase{"event_id blank", "POST", events, authDefault, "", `{"organization_id": "a", "event_id": "", ` + asset + `}`, 400, fe("event_id", blank)},
		badCase{"event_id LF", "POST", events, authDefault, "", `{"organization_id": "a", "event_id": "evt\n1", ` + asset + `}`, 400, fe("event_id", control)},
		badCase{"event_id lone surrogate", "POST", events, authDefault, "", `{"organization_id": "a", "event_id": "evt\udc00", ` + asset + `}`, 400, fe("event_id", control)},
		badCase{"event_id 201 characters", "POST", events, authDefault, "", `{"organization_id": "a", "event_id": "` + strings.Repeat("é", 201) + `", ` + asset + `}`, 400, fe("event_id", `["Ensure this field has no more than 200 characters."]`)},
		badCase{"asset missing", "POST", events, authDefault, "", `{"organization_id": "a"}`, 400, fe("asset", required)},
		badCase{"asset null", "POST", events, authDefault, "", `{"organization_id": "a", "asset": null}`, 400, fe("asset", null)},
		badCase{"asset string", "POST", events, authDefault, "", `{"organization_id": "a", "asset": "vid_1"}`, 400, fe("asset", notObject)},
		badCase{"asset without id", "POST", events, authDefault, "", `{"organization_id": "a", "asset": {"video": {"status": "Completed"}}}`, 400, fe("asset", needsID)},
		badCase{"asset id number", "POST", events, authDefault, "", `{"organization_id": "a", "asset": {"id": 5}}`, 400, fe("asset", needsID)},
		badCase{"asset ID upper-case", "POST", events, authDefault, "", `{"organization_id": "a", "asset": {"ID": "v"}}`, 400, fe("asset", needsID)},
		badCase{"asset id duplicate, last number", "POST", events, authDefault, "", `{"organization_id": "a", "asset": {"id": "v", "id": 5}}`, 400, fe("asset", needsID)},
		badCase{"asset id LF", "POST", events, authDefault, "", `{"organization_id": "a", "asset": {"id": "v\n1"}}`, 400, fe("asset", printable)},
		badCase{"asset id 201 bytes", "POST", events, authDefault, "", `{"organization_id": "a", "asset": {"id": "` + strings.Repeat("v", 201) + `"}}`, 400, fe("asset", printable)},
		badCase{"asset deep without id", "POST", events, authDefault, "", `{"organization_id": "a", "asset": {"deep": ` + nested(5000) + `}}`, 400, fe("asset", needsID)},
	)
	// Webhook controls (DESIGN §10): filters, rotation, recovery.
	notChoice := func(v string) string { return `["\"` + v + `\" is not a valid choice."]` }
	add(
		badCase{"statuses unknown", "PATCH", one, authDefault, "", `{"statuses": ["Completed", "Foo"]}`, 400, fe("statuses", notChoice("Foo"))},
		badCase{"statuses not a list", "PATCH", one, authDefault, "", `{"statuses": "Completed"}`, 400, fe("statuses", `["Expected a list of items but got type \"str\"."]`)},
		badCase{"statuses null", "POST", list, authDefault, "", `{"url": "https://example.com/x", "secret_token": "s", "statuses": null}`, 400, fe("statuses", null)},
		badCase{"statuses number item", "PUT", one, authDefault, "", `{"url": "https://example.com/x", "secret_token": "s", "statuses": [1]}`, 400, fe("statuses", notChoice("1"))},
		badCase{"asset_types unknown", "PATCH", one, authDefault, "", `{"asset_types": ["podcast"]}`, 400, fe("asset_types", notChoice("podcast"))},
		badCase{"asset_types object", "PATCH", one, authDefault, "", `{"asset_types": {}}`, 400, fe("asset_types", `["Expected a list of items but got type \"dict\"."]`)},
		badCase{"rotate grace too long", "POST", rotate, authDefault, "", `{"grace_period_seconds": 604801}`, 400, fe("grace_period_seconds", `["Ensure this value is less than or equal to 604800."]`)},
		badCase{"rotate grace negative", "POST", rotate, authDefault, "", `{"grace_period_seconds": -1}`, 400, fe("grace_period_seconds", `["Ensure this value is greater than or equal to 0."]`)},
		badCase{"rotate grace string", "POST", rotate, authDefault, "", `{"grace_period_seconds": "60"}`, 400, fe("grace_period_seconds", `["A valid integer is required."]`)},
		badCase{"rotate grace fraction", "POST", rotate, authDefault, "", `{"grace_period_seconds": 1.5}`, 400, fe("grace_period_seconds", `["A valid integer is required."]`)},
		badCase{"rotate secret blank", "POST", rotate, authDefault, "", `{"secret_token": " "}`, 400, fe("secret_token", blank)},
		badCase{"rotate secret control", "POST", rotate, authDefault, "", `{"secret_token": "a\nb"}`, 400, fe("secret_token", control)},
		badCase{"rotate not an object", "POST", rotate, authDefault, "", `[]`, 400, `{"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}`},
		badCase{"rotate unknown webhook", "POST", list + "00000000-0000-4000-8000-000000000000/rotate-secret/", authDefault, "", nil, 404, notFound},
		badCase{"rotate deleted webhook", "POST", list + w.hookGone + "/rotate-secret/", authDefault, "", nil, 404, notFound},
		badCase{"recover without since", "POST", recov, authDefault, "", `{}`, 400, fe("since", required)},
		badCase{"recover since not a time", "POST", recov, authDefault, "", `{"since": "last week"}`, 400,
			fe("since", `["Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]`)},
		badCase{"recover until before since", "POST", recov, authDefault, "", `{"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}`, 400,
			fe("until", `["Ensure this value is later than since."]`)},
		badCase{"recover inactive webhook", "POST", list + w.hookOff + "/recover/", authDefault, "", since, 409,
			`{"detail": "The webhook is inactive; re-enable it (is_active) before recovering its deliveries."}`},
		badCase{"recover deleted webhook", "POST", list + w.hookGone + "/recover/", authDefault, "", since, 404, notFound},
		badCase{"recovery unknown", "GET", recovery, authDefault, "", nil, 404, notFound},
		badCase{"recovery of another webhook's path", "GET", list + w.hookOff + "/recoveries/rec_x/", authDefault, "", nil, 404, notFound},
	)
	return cs
}

// TestBadInputTable sends every kind of bad input to every route and checks
// the documented 4xx, that no request is a 5xx, and that the database (every
// table), the workflow starts and the pings sent are unchanged.
func TestBadInputTable(t *testing.T) {
	eachDB(t, func(t *testing.T, s *models.Store, db *sql.DB) {
		w := newWorld(t, s, db)
		cases := w.badCases()
		names := map[string]bool{}
		for _, tc := range cases {
			if names[tc.name] {
				t.Fatalf("duplicate case name %q", tc.name)
			}
			names[tc.name] = true
			if tc.status < 400 || tc.status > 499 {
				t.Fatalf("case %q: a rejection must be a 4xx", tc.name)
			}
		}
		for _, table := range snapshotTables { // so that "unchanged" means something
			if len(w.rows(table, "")) == 0 {
				t.Fatalf("fixture: table %s is empty", table)
			}
		}
		t.Logf("%d bad-input cases", len(cases))
		if len(cases) < 150 {
			t.Fatalf("%d bad-input cases, want at least 150", len(cases))
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := w.snapshot()
				r := w.send(tc)
				if r.status >= 500 {
					t.Fatalf("%s %s: a server error: %d %s", tc.method, tc.path, r.status, r.body)
				}
				wantJSON(t, r, tc.status, tc.want)
				if tc.want == parseError {
					if d, _ := r.json(t)["detail"].(string); !strings.HasPrefix(d, "JSON parse error - ") {
						t.Fatalf("body %s: want a JSON parse error detail", r.body)
					}
				}
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Fatalf("Content-Type %q, want JSON", ct)
				}
				if tc.status == 401 && r.header.Get("WWW-Authenticate") != "Token" {
					t.Fatalf("WWW-Authenticate %q, want Token", r.header.Get("WWW-Authenticate"))
				}
				if after := w.snapshot(); after != before {
					t.Fatalf("a rejected request changed the database:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	})
}

// TestBadInputTableAccepted pins the odd inputs that are valid: SQL-looking
// strings are data, stored and returned byte for byte; duplicate keys are
// last-wins; unknown fields are never applied; deep nesting within the JSON
// limit is accepted; bad pagination is never an error.
func TestBadInputTableAccepted(t *testing.T) {
	eachDB(t, func(t *testing.T, s *models.Store, db *sql.DB) {
		w := newWorld(t, s, db)
		ctx := context.Background()
		const list = "/api/v1/a/webhooks/"
		const events = "/internal/v1/asset-events/"
		one := func(id string) string { return list + id + "/" }

		// wantHook checks a webhook's API answer, its GET and the store agree
		// byte for byte with url and secret.
		wantHook := func(t *testing.T, r response, status int, u, secret string) string {
			t.Helper()
			if r.status != status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, status)
			}
			got := r.json(t)
			id := got["id"].(string)
			if got["url"] != u || got["secret_token"] != secret {
				t.Fatalf("answer %s, want url %q and secret %q verbatim", r.body, u, secret)
			}
			g := w.do("GET", one(id), w.tokA, nil).json(t)
			if g["url"] != u || g["secret_token"] != secret {
				t.Fatalf("GET %v, want url %q and secret %q verbatim", g, u, secret)
			}
			h, err := s.GetWebhook(ctx, "a", id)
			if err != nil || h.URL != u || h.SecretToken != secret {
				t.Fatalf("stored %+v (%v), want url %q and secret %q verbatim", h, err, u, secret)
			}
			return id
		}
		// wantEvent checks a 202 and the stored event.
		wantEvent := func(t *testing.T, r response, eventID string) *models.AssetEvent {
			t.Helper()
			ev, err := s.GetEvent(ctx, eventID)
			if err != nil {
				t.Fatalf("status %d, event not stored: %v", r.status, err)
			}
			if ev.Sequence < 1 {
				t.Fatalf("stored sequence %d, want >= 1", ev.Sequence)
			}
			wantJSON(t, r, 202, string(mustJSON(t, map[string]any{"event_id": eventID, "workflow_id": workflows.WorkflowID(eventID), "sequence": ev.Sequence})))
			return ev
		}
		tableCount := func(t *testing.T, table string) int {
			t.Helper()
			return len(w.rows(table, ""))
		}

		t.Run("SQL-looking strings are stored verbatim", func(t *testing.T) {
			hooks := tableCount(t, "webhooks")
			u := `https://example.com/h?q=';DROP+TABLE+webhooks;--&x="1"`
			secret := `'; DROP TABLE webhooks; --`
			id := wantHook(t, w.do("POST", list, w.tokA, map[string]string{"url": u, "secret_token": secret}), 201, u, secret)
			u, secret = `https://example.com/%27%20OR%201%3D1`, `Robert'); DROP TABLE webhooks;--`
			wantHook(t, w.do("PUT", one(id), w.tokA, map[string]string{"url": u, "secret_token": secret}), 200, u, secret)
			secret = `" OR ""=" \'; -- /* */ ${x} %s 秘密🔑`
			wantHook(t, w.do("PATCH", one(id), w.tokA, map[string]string{"secret_token": secret}), 200, u, secret)
			if n := tableCount(t, "webhooks"); n != hooks+1 {
				t.Fatalf("webhooks: %d rows, want %d", n, hooks+1)
			}

			deliveries := tableCount(t, "deliveries")
			eventID := `'; DROP TABLE asset_events; --`
			rawAsset := `{ "id":"x'); DELETE FROM deliveries; --",  "title" : "Bobby \"Tables\"\u0027",` +
				"\n\t" + `"video": {"status": "Completed' OR 1=1"}, "n": 1.50, "e": "\u00e9\ud83d\ude00" }`
			body := `{"organization_id": "a", "event_id": ` + strconv.Quote(eventID) + `, "asset":   ` + rawAsset + "  }"
			ev := wantEvent(t, w.do("POST", events, w.svc, body), eventID)
			if string(ev.Payload) != rawAsset || ev.AssetID != `x'); DELETE FROM deliveries; --` || ev.AssetStatus != `Completed' OR 1=1` || ev.OrganizationID != "a" {
				t.Fatalf("stored event %+v (payload %s), want the asset verbatim", ev, ev.Payload)
			}
			if n := tableCount(t, "deliveries"); n != deliveries {
				t.Fatalf("deliveries: %d rows, want %d", n, deliveries)
			}
			if e, _ := w.starts.counts(); e != 1 || w.starts.events[0] != eventID {
				t.Fatalf("event starts %v, want exactly %q", w.starts.events, eventID)
			}
			r := w.do("GET", one(w.hookA)+"deliveries/?asset_id="+url.QueryEscape(`' OR '1'='1`), w.tokA, nil)
			wantJSON(t, r, 200, `{"count": 0, "next": null, "previous": null, "results": []}`)
		})

		t.Run("duplicate keys: the last wins", func(t *testing.T) {
			r := w.do("POST", list, w.tokA, `{"url": "https://first.example/", "url": "https://second.example/", "secret_token": "one", "secret_token": "two"}`)
			id := wantHook(t, r, 201, "https://second.example/", "two")
			wantHook(t, w.do("POST", list, w.tokA, `{"url": 5, "url": "https://typed.example/", "secret_token": "s"}`), 201, "https://typed.example/", "s")
			r = w.do("PATCH", one(id), w.tokA, `{"is_active": false, "is_active": true}`)
			if r.status != 200 || r.json(t)["is_active"] != true {
				t.Fatalf("PATCH: %d %s, want still active", r.status, r.body)
			}
			rawAsset := `{"id": 5, "id": "vid_dup", "video": {"status": "Error"}, "video": {"status": "Completed"}}`
			ev := wantEvent(t, w.do("POST", events, w.svc, `{"organization_id": "ghost", "organization_id": "a", "event_id": "evt-dup", "asset": `+rawAsset+`}`), "evt-dup")
			if ev.OrganizationID != "a" || ev.AssetID != "vid_dup" || ev.AssetStatus != "Completed" || string(ev.Payload) != rawAsset {
				t.Fatalf("stored %+v (payload %s)", ev, ev.Payload)
			}
		})

		t.Run("unknown fields are never applied", func(t *testing.T) {
			start := time.Now().Add(-time.Minute)
			r := w.do("POST", list, w.tokA, `{"url": "https://example.com/u", "secret_token": "s", "id": "`+w.hookB+`",
				"organization_id": "b", "created": "2000-01-01T00:00:00Z", "modified": "2000-01-01T00:00:00Z",
				"deactivated_reason": "forged", "deleted_at": "2000-01-01T00:00:00Z", "failing_since": "2000-01-01T00:00:00Z"}`)
			id := wantHook(t, r, 201, "https://example.com/u", "s")
			got := r.json(t)
			created, _ := time.Parse(time.RFC3339Nano, got["created"].(string))
			if id == w.hookB || got["deactivated_reason"] != "" || got["is_active"] != true || created.Before(start) {
				t.Fatalf("created %s: an unknown field was applied", r.body)
			}
			if row := w.row("webhooks", id); row["organization_id"] != "a" || row["deleted_at"] != nil || row["failing_since"] != nil {
				t.Fatalf("stored %v: an unknown field was applied", row)
			}
			wantJSON(t, w.do("GET", "/api/v1/b/webhooks/"+id+"/", w.tokB, nil), 404, notFound)
			if b := w.row("webhooks", w.hookB); b["organization_id"] != "b" {
				t.Fatalf("b's webhook %v changed", b)
			}

			// PATCH: only the known field changes (and modified).
			same := func(t *testing.T, before, after map[string]any, changed ...string) {
				t.Helper()
				for k, v := range before {
					if !slices.Contains(changed, k) && fmt.Sprint(after[k]) != fmt.Sprint(v) {
						t.Fatalf("column %s: %v → %v", k, v, after[k])
					}
				}
				for _, k := range changed {
					if k != "secret_token" && fmt.Sprint(after[k]) == fmt.Sprint(before[k]) {
						t.Fatalf("column %s did not change", k)
					}
				}
			}
			before := w.row("webhooks", id)
			time.Sleep(2 * time.Millisecond)
			r = w.do("PATCH", one(id), w.tokA, `{"id": "00000000-0000-4000-8000-000000000000", "organization_id": "b", "created": "2000-01-01T00:00:00Z",
				"modified": "2000-01-01T00:00:00Z", "deactivated_reason": "forged", "deleted_at": "2000-01-01T00:00:00Z", "secret_token": "rotated"}`)
			if r.status != 200 || r.json(t)["id"] != id || r.json(t)["secret_token"] != "rotated" {
				t.Fatalf("PATCH: %d %s", r.status, r.body)
			}
			after := w.row("webhooks", id)
			same(t, before, after, "secret_token", "updated_at")
			for _, body := range []string{`{}`, ``, `{"created": "2000-01-01T00:00:00Z", "Is_Active": false, "URL": "nope"}`} {
				before = after
				time.Sleep(2 * time.Millisecond)
				if r := w.do("PATCH", one(id), w.tokA, body); r.status != 200 {
					t.Fatalf("PATCH %s: %d %s", body, r.status, r.body)
				}
				after = w.row("webhooks", id)
				same(t, before, after, "updated_at")
			}

			// Events: kind, workflow_id, times and asset fields come from the
			// server and the asset, never from the body. The row waits in
			// the outbox (the recorder starts nothing).
			ev := wantEvent(t, w.do("POST", events, w.svc, `{"organization_id": "a", "event_id": "evt-unknown", "kind": "ping",
				"workflow_id": "evil", "workflow_started_at": "2000-01-01T00:00:00Z", "received_at": "2000-01-01T00:00:00Z",
				"asset_id": "forged", "asset_status": "Forged", "asset": {"id": "vid_u", "video": {"status": "Completed"}}}`), "evt-unknown")
			if ev.Kind != models.EventAsset || ev.WorkflowID != "asset-event:evt-unknown" || ev.AssetID != "vid_u" || ev.AssetStatus != "Completed" ||
				ev.ReceivedAt.Before(start) || ev.WorkflowStartedAt != nil || ev.NextStartAt == nil || ev.NextStartAt.Before(start) {
				t.Fatalf("stored %+v: an unknown field was applied", ev)
			}
		})

		t.Run("deep nesting within the limit", func(t *testing.T) {
			rawAsset := `{"id": "vid_deep", "deep": ` + nested(9000) + `}`
			ev := wantEvent(t, w.do("POST", events, w.svc, `{"organization_id": "a", "event_id": "evt-deep", "asset": `+rawAsset+`}`), "evt-deep")
			if string(ev.Payload) != rawAsset || ev.AssetID != "vid_deep" {
				t.Fatalf("stored asset %.80s… (id %q), want it verbatim", ev.Payload, ev.AssetID)
			}
			wantHook(t, w.do("POST", list, w.tokA, `{"url": "https://example.com/deep", "secret_token": "s", "extra": `+nested(9000)+`}`), 201, "https://example.com/deep", "s")
		})

		t.Run("limits are inclusive", func(t *testing.T) {
			body := `{"url": "https://example.com/mib", "secret_token": "s"}`
			wantHook(t, w.do("POST", list, w.tokA, body+strings.Repeat(" ", 1<<20-len(body))), 201, "https://example.com/mib", "s")
			u := "https://example.com/" + strings.Repeat("a", 2048-len("https://example.com/"))
			secret := strings.Repeat("é", 255)
			wantHook(t, w.do("POST", list, w.tokA, map[string]string{"url": u, "secret_token": secret}), 201, u, secret)
			id := strings.Repeat("é", 200)
			wantEvent(t, w.do("POST", events, w.svc, map[string]any{"organization_id": "a", "event_id": id, "asset": map[string]string{"id": "vid_l"}}), id)
		})

		t.Run("JSON content types and none", func(t *testing.T) {
			for _, ct := range []string{"application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json", "application/vnd.api+json", ""} {
				r := w.do("POST", list, w.tokA, `{"url": "https://example.com/ct", "secret_token": "s"}`, "Content-Type", ct)
				wantHook(t, r, 201, "https://example.com/ct", "s")
			}
		})

		t.Run("spaces are trimmed, escapes are data", func(t *testing.T) {
			wantHook(t, w.do("POST", list, w.tokA, map[string]string{"url": "  https://example.com/t  ", "secret_token": " s "}), 201, "https://example.com/t", "s")
			wantHook(t, w.do("POST", list, w.tokA, map[string]string{"url": "https://example.com/%0d%0aX-Evil:%201", "secret_token": "%00"}), 201, "https://example.com/%0d%0aX-Evil:%201", "%00")
			// A repeated event_id (after trimming) of the same organization is
			// the same answer and starts nothing.
			before := w.snapshot()
			wantEvent(t, w.do("POST", events, w.svc, `{"organization_id": " a ", "event_id": " evt-a ", "asset": {"id": "other"}}`), "evt-a")
			if w.snapshot() != before {
				t.Fatal("a repeated event changed something")
			}
		})

		t.Run("asset status truncated on a character boundary", func(t *testing.T) {
			status := strings.Repeat("s", 199) + "é"
			ev := wantEvent(t, w.do("POST", events, w.svc, map[string]any{"organization_id": "a", "event_id": "evt-status",
				"asset": map[string]any{"id": "vid_s", "video": map[string]string{"status": status}}}), "evt-status")
			if ev.AssetStatus != strings.Repeat("s", 199) {
				t.Fatalf("stored status %q, want the 199 bytes before the cut character", ev.AssetStatus)
			}
		})

		t.Run("bad pagination is never an error", func(t *testing.T) {
			for range 3 {
				w.create("https://example.com/p")
			}
			hooks := 0 // a's live webhooks
			for _, row := range w.rows("webhooks", "") {
				if row["organization_id"] == "a" && row["deleted_at"] == nil {
					hooks++
				}
			}
			tests := []struct {
				path          string
				total         int
				limit, offset int
			}{
				{list + "?limit=abc", hooks, 50, 0},
				{list + "?limit=0", hooks, 50, 0},
				{list + "?limit=-1", hooks, 50, 0},
				{list + "?limit=1e3", hooks, 50, 0},
				{list + "?limit=2.5", hooks, 50, 0},
				{list + "?limit=%202", hooks, 50, 0},
				{list + "?limit=%00", hooks, 50, 0},
				{list + "?limit=99999999999999999999", hooks, 50, 0},
				{list + "?limit=501", hooks, 500, 0},
				{list + "?limit=%2B2", hooks, 2, 0},
				{list + "?limit=2&limit=x", hooks, 2, 0},
				{list + "?offset=-1", hooks, 50, 0},
				{list + "?offset=abc", hooks, 50, 0},
				{list + "?offset=3&offset=-1", hooks, 50, 3},
				{list + "?limit=2&offset=3", hooks, 2, 3},
				{list + "?offset=9223372036854775808", hooks, 50, 0},
				{list + "?offset=9223372036854775807", hooks, 50, 1<<63 - 1},
				{list + "?limit=500&offset=9223372036854775807", hooks, 500, 1<<63 - 1},
				{one(w.hookA) + "deliveries/?limit=-5", 2, 50, 0},
				{one(w.hookA) + "deliveries/?limit=1&offset=999", 2, 1, 999},
				{one(w.hookA) + "deliveries/?limit=1&offset=9223372036854775807", 2, 1, 1<<63 - 1},
				{one(w.hookA) + "deliveries/?status=pending&limit=x", 1, 50, 0},
				{one(w.hookA) + "deliveries/?status=pending&status=bogus", 1, 50, 0},
				{one(w.hookA) + "deliveries/?asset_id=vid_a&offset=-1", 1, 50, 0},
				{one(w.hookA) + "deliveries/?asset_id=vid_b", 0, 50, 0},
			}
			for _, tt := range tests {
				t.Run(tt.path, func(t *testing.T) {
					before := w.snapshot()
					r := w.do("GET", tt.path, w.tokA, nil)
					checkPage(t, r, tt.total, tt.limit, tt.offset)
					if w.snapshot() != before {
						t.Fatal("a list changed the database")
					}
				})
			}
		})
	})
}

// checkPage asserts a 200 list page of a total with the effective limit and
// offset, with DRF's next and previous links (or null).
func checkPage(t *testing.T, r response, total, limit, offset int) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	var page struct {
		Count    int               `json:"count"`
		Next     *string           `json:"next"`
		Previous *string           `json:"previous"`
		Results  []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil || page.Results == nil {
		t.Fatalf("body %s is not a page: %v", r.body, err)
	}
	want := 0
	if offset < total {
		want = min(limit, total-offset)
	}
	if page.Count != total || len(page.Results) != want {
		t.Fatalf("count %d with %d results, want %d with %d", page.Count, len(page.Results), total, want)
	}
	link := func(name string, l *string, wantLink bool, wantOffset int) {
		t.Helper()
		if (l != nil) != wantLink {
			t.Fatalf("%s: got %v, want a link %v (body %s)", name, l, wantLink, r.body)
		}
		if l == nil {
			return
		}
		u, err := url.Parse(*l)
		if err != nil {
			t.Fatalf("%s %q: %v", name, *l, err)
		}
		q := u.Query()
		gotOffset := 0
		if q.Has("offset") {
			if gotOffset, err = strconv.Atoi(q.Get("offset")); err != nil || gotOffset <= 0 {
				t.Fatalf("%s %q: offset must be a positive number or absent", name, *l)
			}
		}
		if q.Get("limit") != strconv.Itoa(limit) || gotOffset != wantOffset {
			t.Fatalf("%s %q: want limit %d and offset %d", name, *l, limit, wantOffset)
		}
	}
	link("next", page.Next, offset < total-limit, offset+limit)
	link("previous", page.Previous, offset > 0, max(offset-limit, 0))
}

// TestTenantIsolationAllRoutes uses organization b's token on a's webhooks
// and deliveries through every route and verb, on b's paths and on a's: each
// is a 404 and changes nothing (no row, no workflow start, no ping). Lists
// never show b a row of a, and an event_id of a is a 409 for b. The same
// requests by a then succeed, so the 404s are not vacuous.
func TestTenantIsolationAllRoutes(t *testing.T) {
	eachDB(t, func(t *testing.T, s *models.Store, db *sql.DB) {
		w := newWorld(t, s, db)
		hook := `{"url": "https://evil.example/", "secret_token": "stolen"}`
		type route struct {
			method, path string // path under /api/v1/<org>/
			body         any
		}
		routes := []route{
			{"GET", "webhooks/" + w.hookA + "/", nil},
			{"PUT", "webhooks/" + w.hookA + "/", hook},
			{"PATCH", "webhooks/" + w.hookA + "/", `{"is_active": false, "secret_token": "stolen"}`},
			{"DELETE", "webhooks/" + w.hookA + "/", nil},
			{"GET", "webhooks/" + w.hookA + "/deliveries/", nil},
			{"POST", "webhooks/" + w.hookA + "/ping/", nil},
			{"POST", "webhooks/" + w.hookA + "/rotate-secret/", nil},
			{"POST", "webhooks/" + w.hookA + "/recover/", `{"since": "2020-01-01T00:00:00Z"}`},
			{"GET", "webhooks/" + w.hookA + "/recoveries/rec_x/", nil},
			{"GET", "webhooks/" + w.hookOff + "/", nil},
			{"POST", "webhooks/" + w.hookOff + "/ping/", nil},
			{"GET", "deliveries/" + w.dDone + "/", nil},
			{"POST", "deliveries/" + w.dDone + "/redeliver/", nil},
			{"GET", "deliveries/" + w.dGone + "/", nil},
			{"POST", "deliveries/" + w.dPending + "/redeliver/", nil},
		}
		n := 0
		check := func(name string, r func() response, status int, body string) {
			t.Helper()
			n++
			t.Run(name, func(t *testing.T) {
				before := w.snapshot()
				wantJSON(t, r(), status, body)
				if after := w.snapshot(); after != before {
					t.Fatalf("database changed:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
		for _, rt := range routes {
			name := rt.method + " " + rt.path
			check("b's path, b's token: "+name, func() response { return w.do(rt.method, "/api/v1/b/"+rt.path, w.tokB, rt.body) }, 404, notFound)
			check("a's path, b's token: "+name, func() response { return w.do(rt.method, "/api/v1/a/"+rt.path, w.tokB, rt.body) }, 404, orgNotFound)
			check("b's path, a's token: "+name, func() response { return w.do(rt.method, "/api/v1/b/"+rt.path, w.tokA, rt.body) }, 404, orgNotFound)
		}
		for _, m := range []string{"GET", "POST"} {
			check("a's list, b's token: "+m, func() response { return w.do(m, "/api/v1/a/webhooks/", w.tokB, hook) }, 404, orgNotFound)
		}
		// And the other way round: a cannot reach b's rows.
		check("a's path, b's webhook", func() response { return w.do("GET", "/api/v1/a/webhooks/"+w.hookB+"/", w.tokA, nil) }, 404, notFound)
		check("a's path, b's deliveries", func() response {
			return w.do("GET", "/api/v1/a/webhooks/"+w.hookB+"/deliveries/", w.tokA, nil)
		}, 404, notFound)
		check("a's path, b's delivery", func() response { return w.do("GET", "/api/v1/a/deliveries/"+w.dB+"/", w.tokA, nil) }, 404, notFound)
		check("a's path, b's redelivery", func() response {
			return w.do("POST", "/api/v1/a/deliveries/"+w.dB+"/redeliver/", w.tokA, nil)
		}, 404, notFound)

		// Events: an event_id is global; another organization's is a 409.
		conflict := `{"detail": "This event_id was already used for another organization."}`
		check("event_id of a, for b", func() response {
			return w.do("POST", "/internal/v1/asset-events/", w.svc, `{"organization_id": "b", "event_id": "evt-a", "asset": {"id": "vid_b"}}`)
		}, 409, conflict)
		check("event_id of b, for a", func() response {
			return w.do("POST", "/internal/v1/asset-events/", w.svc, `{"organization_id": "a", "event_id": " evt-b ", "asset": {"id": "vid_a"}}`)
		}, 409, conflict)
		check("event_id of a, for a again", func() response {
			return w.do("POST", "/internal/v1/asset-events/", w.svc, `{"organization_id": "a", "event_id": "evt-a", "asset": {"id": "vid_a"}}`)
		}, 202, `{"event_id": "evt-a", "workflow_id": "asset-event:evt-a", "sequence": 1}`)
		t.Logf("%d isolation requests", n)

		// Lists never leak a's rows to b.
		aIDs := map[string]bool{}
		for _, table := range []string{"webhooks", "deliveries", "asset_events"} {
			for _, row := range w.rows(table, "") {
				if row["organization_id"] == "a" {
					aIDs[row["id"].(string)] = true
				}
			}
		}
		for _, p := range []string{
			"webhooks/", "webhooks/?limit=500", "webhooks/?offset=1",
			"webhooks/" + w.hookB + "/deliveries/", "webhooks/" + w.hookB + "/deliveries/?limit=500",
			"webhooks/" + w.hookB + "/deliveries/?asset_id=vid_a", "webhooks/" + w.hookB + "/deliveries/?status=succeeded",
		} {
			r := w.do("GET", "/api/v1/b/"+p, w.tokB, nil)
			if r.status != 200 {
				t.Fatalf("b GET %s: %d %s", p, r.status, r.body)
			}
			for _, it := range r.json(t)["results"].([]any) {
				m := it.(map[string]any)
				if aIDs[m["id"].(string)] || aIDs[fmt.Sprint(m["event_id"])] || aIDs[fmt.Sprint(m["webhook_id"])] {
					t.Fatalf("b's %s shows a's row %v", p, m)
				}
			}
		}
		if m := w.do("GET", "/api/v1/b/webhooks/", w.tokB, nil).json(t); m["count"] != float64(1) {
			t.Fatalf("b's webhooks: %v, want only b's", m)
		}
		if m := w.do("GET", "/api/v1/b/webhooks/"+w.hookB+"/deliveries/?asset_id=vid_a", w.tokB, nil).json(t); m["count"] != float64(0) {
			t.Fatalf("b's deliveries filtered on a's asset: %v, want none", m)
		}
		if r := w.do("GET", "/api/v1/b/deliveries/"+w.dB+"/", w.tokB, nil); r.status != 200 || len(r.json(t)["attempts"].([]any)) != 1 {
			t.Fatalf("b's own delivery: %d %s", r.status, r.body)
		}

		// The same requests by a succeed.
		a := "/api/v1/a/"
		if r := w.do("GET", a+"webhooks/"+w.hookA+"/", w.tokA, nil); r.status != 200 {
			t.Fatalf("a GET: %d %s", r.status, r.body)
		}
		if m := w.do("GET", a+"webhooks/"+w.hookA+"/deliveries/", w.tokA, nil).json(t); m["count"] != float64(2) {
			t.Fatalf("a's deliveries: %v, want 2", m)
		}
		if r := w.do("GET", a+"deliveries/"+w.dDone+"/", w.tokA, nil); r.status != 200 || len(r.json(t)["attempts"].([]any)) != 1 {
			t.Fatalf("a's delivery: %d %s", r.status, r.body)
		}
		if r := w.do("POST", a+"webhooks/"+w.hookA+"/ping/", w.tokA, nil); r.status != 200 || r.json(t)["success"] != true || w.pings.Load() != 1 {
			t.Fatalf("a's ping: %d %s, %d requests received", r.status, r.body, w.pings.Load())
		}
		if r := w.do("POST", a+"deliveries/"+w.dDone+"/redeliver/", w.tokA, nil); r.status != 202 || r.json(t)["state"] != "pending" {
			t.Fatalf("a's redelivery: %d %s", r.status, r.body)
		}
		if _, re := w.starts.counts(); re != 1 || w.starts.redeliveries[0].DeliveryID != w.dDone || w.starts.redeliveries[0].OrganizationID != "a" {
			t.Fatalf("redelivery starts %+v", w.starts.redeliveries)
		}
		if r := w.do("PATCH", a+"webhooks/"+w.hookA+"/", w.tokA, `{"secret_token": "mine"}`); r.status != 200 {
			t.Fatalf("a PATCH: %d %s", r.status, r.body)
		}
		if r := w.do("PUT", a+"webhooks/"+w.hookA+"/", w.tokA, `{"url": "https://example.com/mine", "secret_token": "mine"}`); r.status != 200 {
			t.Fatalf("a PUT: %d %s", r.status, r.body)
		}
		if r := w.do("DELETE", a+"webhooks/"+w.hookA+"/", w.tokA, nil); r.status != 204 {
			t.Fatalf("a DELETE: %d %s", r.status, r.body)
		}
		if b := w.row("webhooks", w.hookB); b["deleted_at"] != nil || b["url"] != w.recvURL+"/b" {
			t.Fatalf("b's webhook changed: %v", b)
		}
	})
}
