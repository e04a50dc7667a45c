// Package egress is how streamhooks reaches customer endpoints without
// reaching anything else: the SSRF guard that refuses every non-public
// address, the dialer that resolves a host once and connects only to the
// addresses it checked, the HTTP client built on it, and the URL check the
// API applies when a webhook is created, so a target refused at delivery
// time is refused at create time by the same rules.
package egress

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// BlockedError reports a connection refused by the egress guard. Its
// message is safe to show to customers: it names the address class, never
// internal detail.
type BlockedError struct {
	Addr   netip.Addr
	Host   string // the name refused, or whose answer Addr is; "" for an address literal
	Reason string
}

// Error implements error.
func (e *BlockedError) Error() string {
	switch {
	case e.Host != "" && !e.Addr.IsValid():
		return fmt.Sprintf("destination %s is not allowed (%s)", e.Host, e.Reason)
	case e.Host != "":
		return fmt.Sprintf("destination %s (%s) is not allowed (%s address)", e.Host, e.Addr, e.Reason)
	}
	return fmt.Sprintf("destination %s is not allowed (%s address)", e.Addr, e.Reason)
}

// Guard decides which IP addresses deliveries may connect to. It refuses
// every non-public address unless an operator allow-lists it, and is
// enforced at dial time, after DNS, so a hostname that resolves (or
// re-resolves) to a private address is refused too (see guardedDialer).
type Guard struct {
	allow []netip.Prefix
}

// NewGuard returns a guard that admits the given prefixes in addition to
// public addresses.
func NewGuard(allow []netip.Prefix) *Guard { return &Guard{allow: allow} }

// ParseCIDRs parses a comma-separated list of CIDRs or single addresses
// (STREAMHOOKS_ALLOWED_TARGET_CIDRS).
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("allowed target %q: %w", f, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("allowed target %q: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// LoopbackCIDRs admits loopback targets only: what the dev mode allows so a
// local receiver works while private and metadata ranges stay blocked.
var LoopbackCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

type namedPrefix struct {
	prefix netip.Prefix
	reason string
}

// special is the IANA IPv4 and IPv6 Special-Purpose Address Registries
// (iana-ipv4-special-registry, iana-ipv6-special-registry, as of 2026),
// plus the deprecated blocks they dropped and the cloud addresses netip
// does not know. Every entry is refused, including the few the registry
// marks globally reachable (anycast service addresses, AS112, AMT, ORCHID):
// no webhook endpoint lives there, and refusing one costs nothing. The
// two prefixes that embed an IPv4 address (64:ff9b::/96, 2002::/16) are
// judged by that address instead (see classify), and IPv4-mapped
// addresses are unmapped before any check.
var special = []namedPrefix{
	// IPv4 (loopback, RFC 1918, link-local, multicast and broadcast are
	// netip predicates, checked first).
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"}, // DS-Lite, PCP/TURN anycast, NAT64 discovery, Oracle metadata
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.31.196.0/24"), "AS112"},
	{netip.MustParsePrefix("192.52.193.0/24"), "AMT"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast (deprecated)"},
	{netip.MustParsePrefix("192.175.48.0/24"), "AS112"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	// Azure's WireServer: a public-looking address that every Azure VM
	// reaches and that serves platform secrets.
	{netip.MustParsePrefix("168.63.129.16/32"), "cloud platform"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	// IPv6 (loopback, unspecified, ULA, link-local and multicast are netip
	// predicates; anything outside 2000::/3 is refused after this table).
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("100:0:0:1::/64"), "dummy"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"},
	{netip.MustParsePrefix("2001:10::/28"), "ORCHID (deprecated)"},
	{netip.MustParsePrefix("2001:20::/28"), "ORCHID"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol"}, // PCP/TURN/DNS-SD anycast, AMT, AS112, drone remote ID
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2620:4f:8000::/48"), "AS112"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// globalUnicast is the only IPv6 block IANA allocates for global unicast;
// the rest of the space is reserved by the IETF.
var globalUnicast = netip.MustParsePrefix("2000::/3")

// embedding prefixes carry an IPv4 address inside an IPv6 one; the embedded
// address is checked as well.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	nat64Loc  = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour = netip.MustParsePrefix("2002::/16")
	v4compat  = netip.MustParsePrefix("::/96")
)

// Check returns a *BlockedError when ip may not be connected to.
func (g *Guard) Check(ip netip.Addr) error {
	ip = ip.WithZone("").Unmap()
	for _, p := range g.allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if reason := classify(ip); reason != "" {
		return &BlockedError{Addr: ip, Reason: reason}
	}
	return nil
}

// classify names the non-public class of ip, or returns "" for a public
// address.
func classify(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast"
	}
	if ip.Is6() {
		b := ip.As16()
		var embedded netip.Addr
		switch {
		case v4compat.Contains(ip):
			return "IPv4-compatible (deprecated)"
		case nat64.Contains(ip):
			embedded = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case nat64Loc.Contains(ip):
			return "NAT64 local-use"
		case sixToFour.Contains(ip):
			embedded = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
		if embedded.IsValid() {
			if r := classify(embedded); r != "" {
				return r + " (embedded in IPv6)"
			}
		}
	}
	for _, s := range special {
		if s.prefix.Contains(ip) {
			return s.reason
		}
	}
	if ip.Is6() && !globalUnicast.Contains(ip) && !nat64.Contains(ip) {
		return "reserved (outside 2000::/3)"
	}
	return ""
}

// metadataNames are the host names of cloud instance metadata services.
// Inside their cloud they resolve to a link-local address the dial-time
// check refuses anyway; refusing them by name also covers resolvers that
// answer otherwise, and it needs no lookup.
var metadataNames = map[string]bool{
	"metadata.google.internal":   true, // Google Compute Engine
	"metadata.goog":              true, // Google Compute Engine
	"metadata":                   true, // Compute Engine's short name, via the search domain
	"instance-data":              true, // Amazon EC2, via the search domain
	"instance-data.ec2.internal": true, // Amazon EC2 (us-east-1)
	"metadata.tencentyun.com":    true, // Tencent Cloud
}

// CheckHost refuses, without resolving anything, hosts written as
// non-canonical IPv4 numbers ("0x7f000001", "2130706433", "0177.0.0.1",
// "127.1") and cloud metadata names ("metadata.google.internal"). Go's
// resolver would send the numbers to DNS, but other resolvers (and some
// proxies) read them as addresses; no honest endpoint uses them. Canonical
// addresses and other names pass to the dial-time check.
func (g *Guard) CheckHost(host string) error {
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if name := strings.ToLower(strings.TrimSuffix(host, ".")); metadataNames[name] {
		return &BlockedError{Host: name, Reason: "cloud metadata name"}
	}
	if ip, ok := parseLegacyIPv4(host); ok {
		if err := g.Check(ip); err != nil {
			return err
		}
		return &BlockedError{Addr: ip, Reason: "non-canonical IPv4 form"}
	}
	return nil
}

// CheckURL judges the host of a webhook URL as the dialer will, without
// resolving anything: address literals in any spelling, localhost names and
// cloud metadata names. It returns a *BlockedError for a refused host, and
// nil for a name whose DNS answers decide: an answer now proves nothing
// about the answer at delivery time (DNS rebinding), so those are resolved,
// and every answer checked, at every attempt. A URL that does not parse is
// an error of another type, left to the caller's syntax check.
func (g *Guard) CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("egress: check URL: %w", err)
	}
	// Judge the host net/http will dial: fullwidth and other compatibility
	// spellings fold to ASCII ("１２７．０．０．１" is 127.0.0.1).
	host := strings.ToLower(strings.TrimSuffix(DialHost(u.Hostname()), "."))
	if isLocalhostName(host) {
		// Loopback by definition: refused unless either loopback address
		// is admitted, as at dial time.
		if len(g.admittedLoopbacks()) > 0 {
			return nil
		}
		host = "127.0.0.1"
	}
	if err := g.CheckHost(host); err != nil { // non-canonical IPv4 forms and cloud metadata names
		return err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.Check(ip)
	}
	return nil
}

// loopbacks are the fixed answers for localhost names (RFC 6761), in the
// order they are dialled.
var loopbacks = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}

// admittedLoopbacks returns the loopback addresses the guard admits for a
// localhost name: a name refused only when it admits neither, so an
// operator may allow-list 127.0.0.1 alone. The dialer and CheckURL both
// apply it, so create time and dial time agree.
func (g *Guard) admittedLoopbacks() []netip.Addr {
	var out []netip.Addr
	for _, ip := range loopbacks {
		if g.Check(ip) == nil {
			out = append(out, ip)
		}
	}
	return out
}

// parseLegacyIPv4 reads the inet_aton forms: 1 to 4 dot-separated parts,
// each decimal, octal (leading 0) or hex (0x), the last filling the
// remaining bytes.
func parseLegacyIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if p == "" || err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 255 {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// control is a net.Dialer Control hook: it runs just before connect(2), for
// every address the dialer tries. The guarded dialer hands it only
// addresses it has checked already, so this is a second line of defence.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return &BlockedError{Reason: "unparseable"}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return &BlockedError{Reason: "unparseable"}
	}
	return g.Check(ip)
}
