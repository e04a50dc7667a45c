package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Resolver looks up the addresses of a host name. *net.Resolver satisfies
// it; tests inject scripted answers.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// fallbackDelay is how long the first address family gets before the other
// one is tried in parallel (RFC 8305, as net.Dialer does).
const fallbackDelay = 300 * time.Millisecond

// minDialTimeout is the least time one address of several gets before the
// next is tried.
const minDialTimeout = 2 * time.Second

// guardedDialer resolves a host name once, checks every answer with the
// guard and then connects to the checked addresses themselves, so nothing
// resolves the name again between the check and the connection (DNS
// rebinding).
type guardedDialer struct {
	guard    *Guard
	resolver Resolver
	dialer   *net.Dialer // its Control hook re-checks every address: a second line of defence
}

// DialContext is an http.Transport DialContext.
func (d *guardedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "invalid port", Addr: address}}
	}
	// http.Transport dials with a context that has no deadline, so the
	// dialer's Timeout becomes one deadline for the lookup and every
	// address (as net.Dialer applies it), which dialSerial then shares out
	// so a silent first address leaves time for the next.
	if t := d.dialer.Timeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	ips, err := d.resolve(ctx, network, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	addrs := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		addrs[i] = netip.AddrPortFrom(ip, uint16(port))
	}
	return d.dialAddrs(ctx, network, addrs)
}

// resolve returns the addresses to dial for host, every one of them
// admitted by the guard, or an error: a *BlockedError when any answer is
// refused, a *net.DNSError when there is none.
func (d *guardedDialer) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	host = DialHost(host) // net/http has done it already; a direct caller may not
	if ip, err := netip.ParseAddr(host); err == nil {
		// A literal needs no lookup.
		if err := d.guard.Check(ip); err != nil {
			return nil, err
		}
		return []netip.Addr{ip.Unmap()}, nil
	}
	if err := d.guard.CheckHost(host); err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if isLocalhostName(host) {
		// RFC 6761: localhost names are loopback whatever a DNS server
		// answers for them. These answers are fixed, not an attacker's, so
		// the loopback addresses the guard admits are used and the name is
		// refused only when it admits neither.
		if ips = d.guard.admittedLoopbacks(); len(ips) == 0 {
			refused := d.guard.Check(netip.IPv6Loopback()) // both refused: report ::1, the last tried
			var b *BlockedError
			if errors.As(refused, &b) {
				b.Host = host
			}
			return nil, refused
		}
	} else {
		answers, err := d.resolver.LookupNetIP(ctx, ipNetwork(network), host)
		if err != nil {
			return nil, err
		}
		ips = answers
	}
	// The whole name is refused when any answer is: a name whose answers
	// mix public and private addresses is a rebinding trick (the dialer, or
	// a retry, could pick the private one), and no honest endpoint needs
	// it.
	for _, ip := range ips {
		if err := d.guard.Check(ip); err != nil {
			var b *BlockedError
			if errors.As(err, &b) {
				b.Host = host
			}
			return nil, err
		}
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		ip = ip.Unmap() // *net.Resolver returns IPv4 answers as ::ffff:a.b.c.d
		if (network == "tcp4" && !ip.Is4()) || (network == "tcp6" && !ip.Is6()) {
			continue
		}
		out = append(out, ip)
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no suitable address found", Name: host, IsNotFound: true}
	}
	return out, nil
}

// ipNetwork maps a dial network to the lookup network.
func ipNetwork(network string) string {
	switch network {
	case "tcp4", "udp4":
		return "ip4"
	case "tcp6", "udp6":
		return "ip6"
	}
	return "ip"
}

// DialHost returns the host name net/http connects to for a URL host: an
// ASCII host unchanged, any other one through the IDNA lookup mapping
// (UTS #46), which folds fullwidth and other compatibility spellings, so
// "１２７．０．０．１" is dialled as 127.0.0.1 and "ｌｏｃａｌｈｏｓｔ" as
// localhost. A host the mapping refuses is returned unchanged (net/http
// does the same, and its lookup then fails). The API judges webhook hosts
// in this form, so a spelling refused at dial time is refused at create
// time too.
func DialHost(host string) string {
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			if a, err := idna.Lookup.ToASCII(host); err == nil {
				return a
			}
			return host
		}
	}
	return host
}

// isLocalhostName reports whether host is "localhost" or a name under it
// (RFC 6761), in any case, with or without the final dot.
func isLocalhostName(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// dialAddrs connects to the first address that answers. Addresses of the
// first one's family are tried in order; the other family is tried in
// parallel once the first has had fallbackDelay, as net.Dialer does, so a
// black-holed IPv6 route does not use up the attempt.
func (d *guardedDialer) dialAddrs(ctx context.Context, network string, addrs []netip.AddrPort) (net.Conn, error) {
	var primaries, fallbacks []netip.AddrPort
	for _, a := range addrs {
		if a.Addr().Is4() == addrs[0].Addr().Is4() {
			primaries = append(primaries, a)
		} else {
			fallbacks = append(fallbacks, a)
		}
	}
	if len(fallbacks) == 0 {
		return d.dialSerial(ctx, network, primaries)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		conn    net.Conn
		err     error
		primary bool
	}
	results := make(chan result, 2)
	start := func(list []netip.AddrPort, primary bool) {
		go func() {
			c, err := d.dialSerial(ctx, network, list)
			results <- result{c, err, primary}
		}()
	}
	start(primaries, true)
	timer := time.NewTimer(fallbackDelay)
	defer timer.Stop()
	running, fallbackStarted := 1, false
	var primaryErr, fallbackErr error
	for {
		select {
		case <-timer.C:
			if !fallbackStarted {
				fallbackStarted = true
				running++
				start(fallbacks, false)
			}
		case r := <-results:
			running--
			if r.err == nil {
				if running > 0 {
					// The other racer may still connect: close it.
					go func() {
						if o := <-results; o.conn != nil {
							_ = o.conn.Close()
						}
					}()
				}
				return r.conn, nil
			}
			if r.primary {
				primaryErr = r.err
			} else {
				fallbackErr = r.err
			}
			if !fallbackStarted {
				fallbackStarted = true
				running++
				start(fallbacks, false)
			}
			if running == 0 {
				if primaryErr != nil {
					return nil, primaryErr
				}
				return nil, fallbackErr
			}
		}
	}
}

// dialSerial tries addrs in order; when there are several, each gets a
// share of the time left (at least minDialTimeout) so a silent first
// address leaves time for the others.
func (d *guardedDialer) dialSerial(ctx context.Context, network string, addrs []netip.AddrPort) (net.Conn, error) {
	var firstErr error
	for i, a := range addrs {
		if err := ctx.Err(); err != nil {
			if firstErr == nil {
				firstErr = &net.OpError{Op: "dial", Net: network, Err: err}
			}
			break
		}
		dialCtx := ctx
		if deadline, ok := ctx.Deadline(); ok && i < len(addrs)-1 {
			left := time.Until(deadline)
			share := max(left/time.Duration(len(addrs)-i), min(left, minDialTimeout))
			var cancel context.CancelFunc
			dialCtx, cancel = context.WithTimeout(ctx, share)
			defer cancel()
		}
		c, err := d.dialer.DialContext(dialCtx, network, a.String())
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}
