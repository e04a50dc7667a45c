package activities_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamhooks/streamhooks/activities"
	"github.com/streamhooks/streamhooks/internal/ssrfcases"
	"github.com/streamhooks/streamhooks/models"
	"github.com/streamhooks/streamhooks/models/modelstest"
)

// scriptedResolver is the DNS of the test: scripted answers per name, one
// list per lookup (the last repeated), and a count of lookups per name.
// Like *net.Resolver it returns IPv4 answers in their IPv4-mapped form.
type scriptedResolver struct {
	mu      sync.Mutex
	answers map[string][][]string
	lookups map[string]int
}

func newScriptedResolver() *scriptedResolver {
	return &scriptedResolver{answers: map[string][][]string{}, lookups: map[string]int{}}
}

func (r *scriptedResolver) script(host string, answers [][]string) {
	r.answers[strings.ToLower(strings.TrimSuffix(host, "."))] = answers
}

func (r *scriptedResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[strings.ToLower(strings.TrimSuffix(host, "."))]
}

func (r *scriptedResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	r.lookups[name]++
	script, ok := r.answers[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range script[min(r.lookups[name], len(script))-1] {
		ip := netip.MustParseAddr(s)
		if (network == "ip4" && !ip.Unmap().Is4()) || (network == "ip6" && ip.Is4()) {
			continue
		}
		if ip.Is4() {
			ip = netip.AddrFrom16(ip.As16())
		}
		out = append(out, ip)
	}
	return out, nil
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// ssrfListeners are three receivers on one port: the refused ones on
// 127.0.0.1 and [::1], which no attempt may ever reach, and the admitted
// one on ssrfcases.Allowed, which answers 200 or the redirect its query
// asks for and closes every connection (so each attempt dials anew).
type ssrfListeners struct {
	port     string
	refused  atomic.Int64
	admitted atomic.Int64
	have6    bool
}

func newSSRFListeners(t *testing.T) *ssrfListeners {
	t.Helper()
	l := &ssrfListeners{}
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err == nil {
		l.have6 = true
		_ = probe.Close()
	} else {
		t.Logf("no IPv6 loopback here (%v): the refused listener is IPv4 only", err)
	}
	for try := 0; try < 50; try++ {
		l4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l4.Addr().(*net.TCPAddr).Port)
		admitted, err := net.Listen("tcp4", ssrfcases.Allowed+":"+port)
		if err != nil {
			_ = l4.Close()
			continue
		}
		var l6 net.Listener
		if l.have6 {
			if l6, err = net.Listen("tcp6", "[::1]:"+port); err != nil {
				_ = l4.Close()
				_ = admitted.Close()
				continue
			}
		}
		l.port = port
		ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
		l.serve(t, countingListener{l4, &l.refused}, ok)
		if l6 != nil {
			l.serve(t, countingListener{l6, &l.refused}, ok)
		}
		l.serve(t, countingListener{admitted, &l.admitted}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if to := r.URL.Query().Get("to"); to != "" {
				status, _ := strconv.Atoi(r.URL.Query().Get("status"))
				w.Header().Set("Location", to)
				w.WriteHeader(status)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
		return l
	}
	t.Fatalf("no port free on 127.0.0.1, %s and [::1] at once", ssrfcases.Allowed)
	return nil
}

func (l *ssrfListeners) serve(t *testing.T, ln net.Listener, h http.Handler) {
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	srv.Config.SetKeepAlivesEnabled(false)
	t.Cleanup(srv.Close)
}

// TestSSRFTable runs every form of ssrfcases.All through the real attempt
// path: the guard admits only ssrfcases.Allowed (the stand-in for a public
// address) and names resolve through scripted DNS. No attempt may reach
// the refused listeners; every refused attempt is recorded as blocked with
// a customer-safe message.
func TestSSRFTable(t *testing.T) {
	l := newSSRFListeners(t)
	dns := newScriptedResolver()
	counts := map[ssrfcases.Kind]int{}
	for _, c := range ssrfcases.All {
		counts[c.Kind]++
		switch c.Kind {
		case ssrfcases.DNS, ssrfcases.Rebinding, ssrfcases.Redirect:
			dns.script(c.Host, c.Answers)
		case ssrfcases.Metadata:
			// As inside the cloud: a lookup would find the metadata server.
			dns.script(c.Host, [][]string{{"169.254.169.254"}})
		}
	}
	t.Logf("%d target forms at dial time: %v", len(ssrfcases.All), counts)
	if len(ssrfcases.All) < 80 {
		t.Fatalf("only %d forms, want at least 80", len(ssrfcases.All))
	}

	s := modelstest.Postgres(t)
	modelstest.Org(t, s, "org")
	guard := activities.NewGuard([]netip.Prefix{netip.MustParsePrefix(ssrfcases.Allowed + "/32")})
	base := &env{t: t, store: s, acts: activities.New(activities.Config{
		Store: s, Guard: guard, Resolver: dns, AttemptTimeout: 2 * time.Second, UserAgent: "streamhooks/test",
	})}

	for _, c := range ssrfcases.All {
		t.Run(c.Name(), func(t *testing.T) {
			e := *base
			e.t = t
			refusedBefore, admittedBefore := l.refused.Load(), l.admitted.Load()
			id := e.delivery(c.URL(l.port), `{"id":"a1"}`)
			switch c.Kind {
			case ssrfcases.Redirect:
				res := e.attempt(id, 1, false)
				if res.Outcome != activities.OutcomeRetry || res.StatusCode != c.Status || res.ErrorClass != models.ErrorClassHTTP {
					t.Fatalf("result: got %+v, want a retried %d of class http", res, c.Status)
				}
				rows := e.attempts(id)
				want := "The endpoint answered " + strconv.Itoa(c.Status) + " " + http.StatusText(c.Status) + "."
				if len(rows) != 1 || rows[0].ResponseStatus != c.Status || rows[0].ErrorMessage != want {
					t.Fatalf("attempt rows: %+v, want one with %q", rows, want)
				}
				if n := l.admitted.Load() - admittedBefore; n != 1 {
					t.Fatalf("the admitted receiver accepted %d connections, want 1", n)
				}
			case ssrfcases.Rebinding:
				// The first lookup answers the admitted address: delivered.
				if res := e.attempt(id, 1, false); res.Outcome != activities.OutcomeDelivered {
					t.Fatalf("attempt 1: got %+v, want delivered to the admitted address", res)
				}
				if n := l.admitted.Load() - admittedBefore; n != 1 {
					t.Fatalf("the admitted receiver accepted %d connections, want 1", n)
				}
				// The next event's attempt looks the name up again and gets
				// a refused address: blocked, not dialed.
				wantBlocked(t, &e, e.delivery(c.URL(l.port), `{"id":"a2"}`), 1)
			default:
				wantBlocked(t, &e, id, 1)
			}
			// One lookup per attempt, none for literals and names judged by
			// name: nothing resolves again between the check and the dial.
			wantLookups := map[ssrfcases.Kind]int{ssrfcases.DNS: 1, ssrfcases.Rebinding: 2, ssrfcases.Redirect: 1}[c.Kind]
			if n := dns.count(c.Host); n != wantLookups {
				t.Fatalf("%d lookups of %s, want %d", n, c.Host, wantLookups)
			}
			if n := l.refused.Load() - refusedBefore; n != 0 {
				t.Fatalf("the refused listener accepted %d connections, want 0", n)
			}
		})
	}
	if n := l.refused.Load(); n != 0 {
		t.Fatalf("the refused listener accepted %d connections in all, want 0", n)
	}
}

// wantBlocked makes attempt n and checks it was refused by the guard and
// recorded with a customer-safe message.
func wantBlocked(t *testing.T, e *env, id string, n int) {
	t.Helper()
	res := e.attempt(id, n, false)
	if res.Outcome != activities.OutcomeRetry || res.ErrorClass != models.ErrorClassBlocked || res.StatusCode != 0 {
		t.Fatalf("attempt %d: got %+v, want a retried attempt of class blocked", n, res)
	}
	rows := e.attempts(id)
	if len(rows) != n {
		t.Fatalf("%d attempt rows, want %d", len(rows), n)
	}
	row := rows[n-1]
	msg := row.ErrorMessage
	if row.ErrorClass != models.ErrorClassBlocked || !strings.HasPrefix(msg, "Blocked: destination ") || !strings.HasSuffix(msg, ".") {
		t.Fatalf("attempt row: class %q message %q, want blocked with a Blocked: message", row.ErrorClass, msg)
	}
	for _, leak := range []string{secret, "dial ", "lookup ", "tcp", "syscall", "connect:"} {
		if strings.Contains(msg, leak) {
			t.Fatalf("message %q contains %q: not customer-safe", msg, leak)
		}
	}
	if !strings.Contains(msg, " is not allowed (") {
		t.Fatalf("message %q does not name the refused class", msg)
	}
}

// TestGuardedDialFallsBackAcrossFamilies: a name with an IPv6 and an IPv4
// answer, both admitted, is delivered through the IPv4 one when nothing
// listens on the IPv6 one, after a single lookup.
func TestGuardedDialFallsBackAcrossFamilies(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, _ int) { w.WriteHeader(http.StatusNoContent) })
	port := rec.srv.URL[strings.LastIndex(rec.srv.URL, ":")+1:]
	dns := newScriptedResolver()
	dns.script("dual.example.com", [][]string{{"::1", "127.0.0.1"}})
	s := modelstest.Postgres(t)
	modelstest.Org(t, s, "org")
	e := &env{t: t, store: s, acts: activities.New(activities.Config{
		Store: s, Guard: activities.NewGuard(activities.LoopbackCIDRs), Resolver: dns, AttemptTimeout: 5 * time.Second,
	})}
	id := e.delivery("http://dual.example.com:"+port+"/hook", `{"id":"a1"}`)
	if res := e.attempt(id, 1, false); res.Outcome != activities.OutcomeDelivered || res.StatusCode != http.StatusNoContent {
		t.Fatalf("result: got %+v, want delivered 204", res)
	}
	if rec.count() != 1 || dns.count("dual.example.com") != 1 {
		t.Fatalf("receiver saw %d requests after %d lookups, want 1 and 1", rec.count(), dns.count("dual.example.com"))
	}
}

// deadlineResolver answers like its inner resolver and records whether the
// lookup had a deadline: http.Transport dials without one, so the dialer
// must bound the lookup and the connection attempts itself.
type deadlineResolver struct {
	inner       activities.Resolver
	sawDeadline atomic.Bool
}

func (r *deadlineResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	_, ok := ctx.Deadline()
	r.sawDeadline.Store(ok)
	return r.inner.LookupNetIP(ctx, network, host)
}

// TestGuardedDialHasDeadline: through the real http.Client, the lookup and
// the dial run under the dialer's timeout, so one silent address cannot use
// up a whole attempt before the next address is tried.
func TestGuardedDialHasDeadline(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, _ int) { w.WriteHeader(http.StatusOK) })
	port := rec.srv.URL[strings.LastIndex(rec.srv.URL, ":")+1:]
	dns := newScriptedResolver()
	dns.script("timed.example.com", [][]string{{"127.0.0.1"}})
	res := &deadlineResolver{inner: dns}
	s := modelstest.Postgres(t)
	modelstest.Org(t, s, "org")
	e := &env{t: t, store: s, acts: activities.New(activities.Config{
		Store: s, Guard: activities.NewGuard(activities.LoopbackCIDRs), Resolver: res, AttemptTimeout: 5 * time.Second,
	})}
	id := e.delivery("http://timed.example.com:"+port+"/hook", `{"id":"a1"}`)
	if r := e.attempt(id, 1, false); r.Outcome != activities.OutcomeDelivered {
		t.Fatalf("result: got %+v, want delivered", r)
	}
	if !res.sawDeadline.Load() {
		t.Fatal("the lookup ran without a deadline: the dialer timeout is not applied")
	}
}

// TestLocalhostWithOneLoopbackAllowed: an operator who allow-lists
// 127.0.0.1 alone can deliver to http://localhost (::1 is skipped, not a
// reason to refuse the name).
func TestLocalhostWithOneLoopbackAllowed(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, _ int) { w.WriteHeader(http.StatusOK) })
	port := rec.srv.URL[strings.LastIndex(rec.srv.URL, ":")+1:]
	allow, err := activities.ParseCIDRs("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s := modelstest.Postgres(t)
	modelstest.Org(t, s, "org")
	e := &env{t: t, store: s, acts: activities.New(activities.Config{Store: s, Guard: activities.NewGuard(allow), AttemptTimeout: 5 * time.Second})}
	id := e.delivery("http://localhost:"+port+"/hook", `{"id":"a1"}`)
	if r := e.attempt(id, 1, false); r.Outcome != activities.OutcomeDelivered || rec.count() != 1 {
		t.Fatalf("result: got %+v after %d requests, want delivered once", r, rec.count())
	}
}
