package egress

import (
	"net/netip"
	"testing"
)

// FuzzCheckHost: never panics; a canonical address is left to the
// dial-time check; anything read as a legacy IPv4 number is refused.
func FuzzCheckHost(f *testing.F) {
	for _, seed := range []string{"example.com", "127.0.0.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.1", "1.2.3.4.5", "0x", "::1", ""} {
		f.Add(seed)
	}
	g := NewGuard(nil)
	f.Fuzz(func(t *testing.T, host string) {
		err := g.CheckHost(host)
		_, perr := netip.ParseAddr(host)
		if perr == nil && err != nil {
			t.Fatalf("canonical address %q refused before dialing: %v", host, err)
		}
		if ip, ok := parseLegacyIPv4(host); ok && perr != nil && err == nil {
			t.Fatalf("legacy form %q (%s) was not refused", host, ip)
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			_ = g.Check(ip)
		}
	})
}
