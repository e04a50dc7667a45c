package egress_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/streamhooks/streamhooks/egress"
)

func TestGuardCheck(t *testing.T) {
	open := egress.NewGuard(nil)
	dev := egress.NewGuard(egress.LoopbackCIDRs)
	tests := []struct {
		addr      string
		blocked   bool
		devBlocks bool
	}{
		{"8.8.8.8", false, false},
		{"1.1.1.1", false, false},
		{"2606:4700:4700::1111", false, false},
		{"64:ff9b::808:808", false, false}, // NAT64 of a public address
		{"2001:4860:4860::8888", false, false},
		{"2620:fe::fe", false, false},
		{"2a00:1450:4001:80b::200e", false, false},
		{"192.0.1.1", false, false},
		{"192.88.98.1", false, false},
		{"4000::1", true, true},
		{"3fff::1", true, true},
		{"2001:2::1", true, true},
		{"2001:10::1", true, true},
		{"2001:20::1", true, true},
		{"2001:1ff::1", true, true},
		{"::ffff:0:7f00:1", true, true},
		{"5f00::1", true, true},
		{"192.88.99.1", true, true},
		{"127.0.0.1", true, false},
		{"127.255.255.254", true, false},
		{"::1", true, false},
		{"::ffff:127.0.0.1", true, false},
		{"10.1.2.3", true, true},
		{"172.16.0.1", true, true},
		{"192.168.0.1", true, true},
		{"169.254.169.254", true, true},
		{"::ffff:169.254.169.254", true, true},
		{"100.64.0.1", true, true},
		{"0.0.0.0", true, true},
		{"0.1.2.3", true, true},
		{"::", true, true},
		{"224.0.0.251", true, true},
		{"255.255.255.255", true, true},
		{"fe80::1", true, true},
		{"fe80::1%eth0", true, true},
		{"fc00::1", true, true},
		{"fd12:3456::1", true, true},
		{"ff02::1", true, true},
		{"64:ff9b::a9fe:a9fe", true, true},
		{"64:ff9b:1::1", true, true},
		{"2002:c0a8:101::1", true, true},
		{"2001::1", true, true},
		{"::7f00:1", true, true},
		{"198.18.0.1", true, true},
		{"203.0.113.5", true, true},
		{"240.0.0.1", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.addr)
			if got := open.Check(ip) != nil; got != tt.blocked {
				t.Errorf("default guard blocks %s: got %v, want %v", tt.addr, got, tt.blocked)
			}
			if got := dev.Check(ip) != nil; got != tt.devBlocks {
				t.Errorf("loopback-allowing guard blocks %s: got %v, want %v", tt.addr, got, tt.devBlocks)
			}
		})
	}
}

func TestGuardCheckHost(t *testing.T) {
	g := egress.NewGuard(nil)
	tests := []struct {
		host    string
		blocked bool
	}{
		{"example.com", false},
		{"8.8.8.8", false},
		{"127.0.0.1", false}, // canonical: left to the dial-time check
		{"0x7f000001", true},
		{"2130706433", true},
		{"0177.0.0.1", true},
		{"127.1", true},
		{"0x08080808", true}, // public, but never a real endpoint's spelling
		{"1.2.3.example", false},
		{"123abc", false},
	}
	for _, tt := range tests {
		if got := g.CheckHost(tt.host) != nil; got != tt.blocked {
			t.Errorf("CheckHost(%q): got blocked=%v, want %v", tt.host, got, tt.blocked)
		}
	}
}

// TestCheckURL: the create-time check refuses, without DNS, what the
// dialer refuses without DNS, with the message the API shows.
func TestCheckURL(t *testing.T) {
	only4 := egress.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	only6 := egress.NewGuard([]netip.Prefix{netip.MustParsePrefix("::1/128")})
	open := egress.NewGuard(nil)
	dev := egress.NewGuard(egress.LoopbackCIDRs)
	tests := []struct {
		guard *egress.Guard
		url   string
		want  string // the BlockedError message; "" when admitted
	}{
		{open, "https://example.com/hook", ""},
		{open, "http://rebinds-later.example:8080/", ""}, // names are judged at dial time
		{open, "http://8.8.8.8/", ""},
		{open, "http://127.0.0.1:9000/", "destination 127.0.0.1 is not allowed (loopback address)"},
		{open, "http://[::1]/", "destination ::1 is not allowed (loopback address)"},
		{open, "http://[fe80::1%25eth0]/", "destination fe80::1 is not allowed (link-local address)"},
		{open, "http://localhost/", "destination 127.0.0.1 is not allowed (loopback address)"},
		{open, "http://API.LocalHost./", "destination 127.0.0.1 is not allowed (loopback address)"},
		{open, "http://ｌｏｃａｌｈｏｓｔ/", "destination 127.0.0.1 is not allowed (loopback address)"},
		{open, "http://１２７．０．０．１/", "destination 127.0.0.1 is not allowed (loopback address)"},
		{open, "http://0x7f000001/", "destination 127.0.0.1 is not allowed (loopback address)"},
		{open, "http://0x08080808/", "destination 8.8.8.8 is not allowed (non-canonical IPv4 form address)"},
		{open, "http://Metadata.Google.Internal./", "destination metadata.google.internal is not allowed (cloud metadata name)"},
		{open, "http://10.0.0.1/", "destination 10.0.0.1 is not allowed (private address)"},
		{dev, "http://localhost:9000/", ""},
		{dev, "http://127.0.0.1:9000/", ""},
		{dev, "http://10.0.0.1/", "destination 10.0.0.1 is not allowed (private address)"},
		{only4, "http://localhost/", ""},
		{only4, "http://[::1]/", "destination ::1 is not allowed (loopback address)"},
		{only6, "http://localhost/", ""},
		{only6, "http://127.0.0.1/", "destination 127.0.0.1 is not allowed (loopback address)"},
	}
	for _, tt := range tests {
		err := tt.guard.CheckURL(tt.url)
		var b *egress.BlockedError
		if errors.As(err, &b) != (tt.want != "") || (b != nil && b.Error() != tt.want) {
			t.Errorf("CheckURL(%q): got %v, want %q", tt.url, err, tt.want)
		}
	}
	err := open.CheckURL("http://[::1")
	var b *egress.BlockedError
	if err == nil || errors.As(err, &b) {
		t.Errorf("CheckURL of an unparseable URL: got %v, want a parse error", err)
	}
}

func TestParseCIDRs(t *testing.T) {
	ps, err := egress.ParseCIDRs(" 127.0.0.0/8, ::1 ,10.1.2.3")
	if err != nil || len(ps) != 3 || ps[1].Bits() != 128 || ps[2].Bits() != 32 {
		t.Fatalf("ParseCIDRs: got %v, %v", ps, err)
	}
	if _, err := egress.ParseCIDRs("10.0.0.0/99"); err == nil {
		t.Fatal("ParseCIDRs accepted a bad prefix")
	}
}

func BenchmarkGuardCheck(b *testing.B) {
	g := egress.NewGuard(egress.LoopbackCIDRs)
	ips := []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("64:ff9b::808:808")}
	for b.Loop() {
		for _, ip := range ips {
			_ = g.Check(ip)
		}
	}
}
