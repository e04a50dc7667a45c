package egress_test

import (
	"context"
	"errors"
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

	"github.com/streamhooks/streamhooks/egress"
	"github.com/streamhooks/streamhooks/internal/ssrfcases"
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

// post sends one delivery-like request through client and returns the
// status it got, or the error; the body is read and closed.
func post(t *testing.T, client *http.Client, url string) (int, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(`{"id":"a1"}`))
	if err != nil {
		t.Fatalf("request for %s: %v", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// TestSSRFTable runs every form of ssrfcases.All through the delivery
// client: the guard admits only ssrfcases.Allowed (the stand-in for a
// public address) and names resolve through scripted DNS. No request may
// reach the refused listeners; every refused one fails with a
// *BlockedError whose message is customer-safe (package activities records
// it as "Blocked: " + that message, see its TestSSRFBlockedAtDial).
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

	guard := egress.NewGuard([]netip.Prefix{netip.MustParsePrefix(ssrfcases.Allowed + "/32")})
	client := egress.NewClient(guard, dns, 2*time.Second)

	for _, c := range ssrfcases.All {
		t.Run(c.Name(), func(t *testing.T) {
			refusedBefore, admittedBefore := l.refused.Load(), l.admitted.Load()
			url := c.URL(l.port)
			switch c.Kind {
			case ssrfcases.Redirect:
				status, err := post(t, client, url)
				if err != nil || status != c.Status {
					t.Fatalf("got %d, %v; want the %d itself, not followed", status, err, c.Status)
				}
				if n := l.admitted.Load() - admittedBefore; n != 1 {
					t.Fatalf("the admitted receiver accepted %d connections, want 1", n)
				}
			case ssrfcases.Rebinding:
				// The first lookup answers the admitted address: delivered.
				if status, err := post(t, client, url); err != nil || status != http.StatusOK {
					t.Fatalf("request 1: got %d, %v; want 200 from the admitted address", status, err)
				}
				if n := l.admitted.Load() - admittedBefore; n != 1 {
					t.Fatalf("the admitted receiver accepted %d connections, want 1", n)
				}
				// The next request looks the name up again and gets a
				// refused address: blocked, not dialed.
				wantBlocked(t, client, url)
			default:
				wantBlocked(t, client, url)
			}
			// One lookup per request, none for literals and names judged by
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

// wantBlocked sends one request and checks the guard refused it with a
// customer-safe message.
func wantBlocked(t *testing.T, client *http.Client, url string) {
	t.Helper()
	status, err := post(t, client, url)
	var b *egress.BlockedError
	if !errors.As(err, &b) {
		t.Fatalf("got %d, %v; want a *egress.BlockedError", status, err)
	}
	msg := b.Error()
	if !strings.HasPrefix(msg, "destination ") || !strings.Contains(msg, " is not allowed (") || !strings.HasSuffix(msg, ")") {
		t.Fatalf("message %q, want one naming the refused destination and class", msg)
	}
	for _, leak := range []string{"dial ", "lookup ", "tcp", "syscall", "connect:"} {
		if strings.Contains(msg, leak) {
			t.Fatalf("message %q contains %q: not customer-safe", msg, leak)
		}
	}
}

// receiver is a loopback endpoint that answers status and counts requests.
func receiver(t *testing.T, status int) (port string, requests *atomic.Int64) {
	t.Helper()
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL[strings.LastIndex(srv.URL, ":")+1:], requests
}

// TestGuardedDialFallsBackAcrossFamilies: a name with an IPv6 and an IPv4
// answer, both admitted, is delivered through the IPv4 one when nothing
// listens on the IPv6 one, after a single lookup.
func TestGuardedDialFallsBackAcrossFamilies(t *testing.T) {
	port, requests := receiver(t, http.StatusNoContent)
	dns := newScriptedResolver()
	dns.script("dual.example.com", [][]string{{"::1", "127.0.0.1"}})
	client := egress.NewClient(egress.NewGuard(egress.LoopbackCIDRs), dns, 5*time.Second)
	if status, err := post(t, client, "http://dual.example.com:"+port+"/hook"); err != nil || status != http.StatusNoContent {
		t.Fatalf("got %d, %v; want 204", status, err)
	}
	if requests.Load() != 1 || dns.count("dual.example.com") != 1 {
		t.Fatalf("receiver saw %d requests after %d lookups, want 1 and 1", requests.Load(), dns.count("dual.example.com"))
	}
}

// deadlineResolver answers like its inner resolver and records whether the
// lookup had a deadline: http.Transport dials without one, so the dialer
// must bound the lookup and the connection attempts itself.
type deadlineResolver struct {
	inner       egress.Resolver
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
	port, _ := receiver(t, http.StatusOK)
	dns := newScriptedResolver()
	dns.script("timed.example.com", [][]string{{"127.0.0.1"}})
	res := &deadlineResolver{inner: dns}
	client := egress.NewClient(egress.NewGuard(egress.LoopbackCIDRs), res, 5*time.Second)
	if status, err := post(t, client, "http://timed.example.com:"+port+"/hook"); err != nil || status != http.StatusOK {
		t.Fatalf("got %d, %v; want 200", status, err)
	}
	if !res.sawDeadline.Load() {
		t.Fatal("the lookup ran without a deadline: the dialer timeout is not applied")
	}
}

// TestLocalhostWithOneLoopbackAllowed: an operator who allow-lists
// 127.0.0.1 alone can deliver to http://localhost (::1 is skipped, not a
// reason to refuse the name).
func TestLocalhostWithOneLoopbackAllowed(t *testing.T) {
	port, requests := receiver(t, http.StatusOK)
	allow, err := egress.ParseCIDRs("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	client := egress.NewClient(egress.NewGuard(allow), nil, 5*time.Second)
	if status, err := post(t, client, "http://localhost:"+port+"/hook"); err != nil || status != http.StatusOK || requests.Load() != 1 {
		t.Fatalf("got %d, %v after %d requests; want 200 once", status, err, requests.Load())
	}
}

// TestLocalhostRefused: with no loopback admitted, a localhost name is
// refused by name, without a lookup, reporting the name and ::1.
func TestLocalhostRefused(t *testing.T) {
	dns := newScriptedResolver()
	client := egress.NewClient(egress.NewGuard(nil), dns, 5*time.Second)
	_, err := post(t, client, "http://localhost:8443/hook")
	var b *egress.BlockedError
	if !errors.As(err, &b) || b.Error() != "destination localhost (::1) is not allowed (loopback address)" {
		t.Fatalf("got %v, want localhost refused as ::1", err)
	}
	if n := dns.count("localhost"); n != 0 {
		t.Fatalf("%d lookups of localhost, want 0", n)
	}
}
