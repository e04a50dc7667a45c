// Package ssrfcases is the one list of server-side request forgery target
// forms that both the create-time test (package api) and the dial-time test
// (package egress) run. It is test data only; no production code
// imports it.
package ssrfcases

import (
	"net/url"
	"strconv"
	"strings"
)

// Kind says when, and how, a form is judged.
type Kind string

// Kinds of form.
const (
	// Address is an address in any spelling: refused when the webhook is
	// created and at every attempt, without a lookup.
	Address Kind = "address"
	// Localhost is a localhost name (RFC 6761): refused at create time and
	// at every attempt, without a lookup.
	Localhost Kind = "localhost"
	// Metadata is a cloud metadata host name: refused by name at create
	// time and at every attempt, without a lookup.
	Metadata Kind = "metadata"
	// DNS is a name that only its DNS answers condemn: accepted at create
	// time (no DNS there), refused at the attempt after one lookup.
	DNS Kind = "dns"
	// Rebinding is a name whose first answer is admitted and whose later
	// answers are not: the first attempt reaches the admitted receiver,
	// the next is refused, and nothing ever reaches the refused address.
	Rebinding Kind = "rebinding"
	// Redirect is an admitted receiver that answers a redirect to a refused
	// target: recorded as the 3xx it is, never followed.
	Redirect Kind = "redirect"
)

// Allowed stands in for a public address: the dial-time test allow-lists
// it and runs an admitted receiver there, on the refused listener's port.
const Allowed = "127.0.0.2"

// Port in a Location is replaced by the refused listener's port.
const Port = "{port}"

// Case is one target form.
type Case struct {
	Kind Kind
	// Host is the URL host as written (IPv6 in brackets).
	Host string
	// Answers scripts the DNS answers of Host for DNS, Rebinding and
	// Redirect cases: one list per lookup, the last one repeated.
	Answers [][]string
	// Status and Location are what the admitted receiver answers in a
	// Redirect case; Location may contain Port.
	Status   int
	Location string
}

// CreateRefused reports whether the API refuses the form when a webhook is
// created or updated. The others can only be judged at dial time.
func (c Case) CreateRefused() bool {
	return c.Kind == Address || c.Kind == Localhost || c.Kind == Metadata
}

// URL returns the webhook URL of the case on port.
func (c Case) URL(port string) string {
	u := "http://" + c.Host + ":" + port + "/hook"
	if c.Kind == Redirect {
		u += "?status=" + strconv.Itoa(c.Status) + "&to=" + url.QueryEscape(strings.ReplaceAll(c.Location, Port, port))
	}
	return u
}

// Name labels the case in test output.
func (c Case) Name() string {
	switch c.Kind {
	case Redirect:
		return string(c.Kind) + " " + strconv.Itoa(c.Status) + " to " + c.Location
	case DNS, Rebinding:
		lookups := make([]string, len(c.Answers))
		for i, l := range c.Answers {
			lookups[i] = strings.Join(l, ",")
		}
		return string(c.Kind) + " " + c.Host + " = " + strings.Join(lookups, " then ")
	}
	return string(c.Kind) + " " + c.Host
}

func addr(host string) Case      { return Case{Kind: Address, Host: host} }
func localhost(host string) Case { return Case{Kind: Localhost, Host: host} }
func metadata(host string) Case  { return Case{Kind: Metadata, Host: host} }
func dns(host string, answers ...string) Case {
	return Case{Kind: DNS, Host: host, Answers: [][]string{answers}}
}
func rebinding(host string, first, later string) Case {
	return Case{Kind: Rebinding, Host: host, Answers: [][]string{{first}, {later}}}
}
func redirect(host string, status int, location string) Case {
	return Case{Kind: Redirect, Host: host, Answers: [][]string{{Allowed}}, Status: status, Location: location}
}

// All is the table. Every Host is unique, so a test can script DNS and
// count lookups per name.
var All = []Case{
	// Loopback, in every IPv4 spelling inet_aton accepts.
	addr("127.0.0.1"),
	addr("127.255.255.254"),
	addr("127.1"),
	addr("127.0.1"),
	addr("2130706433"),
	addr("0x7f000001"),
	addr("0X7F000001"),
	addr("0x7f.0.0.1"),
	addr("0x7f.0x0.0x0.0x1"),
	addr("0x7f.1"),
	addr("0177.0.0.1"),
	addr("0177.0000.0000.0001"),
	addr("017700000001"),
	addr("0177.1"),
	addr("127.0.0.0x1"),
	// The unspecified address, which Linux connects to loopback.
	addr("0"),
	addr("0.0.0.0"),
	addr("0x0"),
	addr("0.0"),
	// Private ranges, plainly and obfuscated.
	addr("10.0.0.1"),
	addr("012.0.0.1"),
	addr("167772161"),
	addr("172.16.0.1"),
	addr("192.168.0.1"),
	addr("3232235521"),
	addr("0xc0.0xa8.0.1"),
	// Cloud metadata addresses.
	addr("169.254.169.254"),
	addr("2852039166"),
	addr("0xa9fea9fe"),
	addr("0251.0376.0251.0376"),
	addr("169.254.43518"),
	addr("169.254.170.2"),   // Amazon ECS task metadata
	addr("100.100.100.200"), // Alibaba Cloud
	addr("192.0.0.192"),     // Oracle Cloud
	addr("168.63.129.16"),   // Azure WireServer
	addr("[fd00:ec2::254]"), // Amazon EC2 over IPv6
	// Other non-public ranges.
	addr("100.64.0.1"),
	addr("198.18.0.1"),
	addr("224.0.0.1"),
	addr("255.255.255.255"),
	addr("240.0.0.1"),
	// IPv6 loopback and unspecified.
	addr("[::1]"),
	addr("[0:0:0:0:0:0:0:1]"),
	addr("[0000:0000:0000:0000:0000:0000:0000:0001]"),
	addr("[::]"),
	// IPv4-mapped and IPv4-compatible IPv6.
	addr("[::ffff:127.0.0.1]"),
	addr("[::ffff:7f00:1]"),
	addr("[0:0:0:0:0:ffff:127.0.0.1]"),
	addr("[::ffff:169.254.169.254]"),
	addr("[::ffff:a9fe:a9fe]"),
	addr("[::ffff:10.0.0.1]"),
	addr("[::127.0.0.1]"),
	// IPv6 link-local, unique local, site-local and multicast.
	addr("[fe80::1]"),
	addr("[fe80::a9fe:a9fe]"),
	addr("[fc00::1]"),
	addr("[fd00::1]"),
	addr("[fec0::1]"),
	addr("[ff02::1]"),
	// NAT64, 6to4 and Teredo forms of refused IPv4 addresses.
	addr("[64:ff9b::127.0.0.1]"),
	addr("[64:ff9b::7f00:1]"),
	addr("[64:ff9b::a9fe:a9fe]"),
	addr("[64:ff9b::10.0.0.1]"),
	addr("[64:ff9b:1::a9fe:a9fe]"),
	addr("[2002:7f00:1::]"),
	addr("[2002:a9fe:a9fe::1]"),
	addr("[2002:c0a8:1::1]"),
	addr("[2001:0:4136:e378:8000:63bf:3fff:fdd2]"),
	// IANA special-purpose blocks that are not public, beyond the above.
	addr("192.88.99.1"),       // deprecated 6to4 relay anycast
	addr("192.0.0.170"),       // NAT64 discovery
	addr("192.31.196.1"),      // AS112
	addr("[4000::1]"),         // outside 2000::/3, the global unicast space
	addr("[3fff::1]"),         // documentation (3fff::/20)
	addr("[2001:2::1]"),       // benchmarking
	addr("[2001:10::1]"),      // ORCHID
	addr("[2001:20::1]"),      // ORCHIDv2
	addr("[2001:3::1]"),       // AMT, inside 2001::/23
	addr("[::ffff:0:7f00:1]"), // IPv4-translated loopback
	addr("[5f00::1]"),         // segment routing
	addr("[100:0:0:1::1]"),    // dummy prefix
	addr("[2620:4f:8000::1]"), // AS112
	addr("[8000::1]"),         // reserved by the IETF
	// Fullwidth and other compatibility spellings, which the IDNA mapping
	// in net/http folds to the forms above before dialing.
	addr("１２７．０．０．１"),
	addr("127。0。0。1"),
	addr("１６９．２５４．１６９．２５４"),
	addr("０ｘ７ｆ０００００１"),
	addr("⑩.0.0.1"),
	// localhost names.
	localhost("localhost"),
	localhost("LOCALHOST"),
	localhost("localhost."),
	localhost("LocalHost."),
	localhost("api.localhost"),
	localhost("a.b.LOCALHOST"),
	localhost("ｌｏｃａｌｈｏｓｔ"),
	localhost("ＬＯＣＡＬＨＯＳＴ"),
	localhost("ⓛⓞⓒⓐⓛⓗⓞⓢⓣ"),
	localhost("api．localhost"),
	localhost("loca\u00adlhost"), // a soft hyphen, which IDNA drops
	// Cloud metadata names.
	metadata("metadata.google.internal"),
	metadata("METADATA.Google.Internal"),
	metadata("metadata.google.internal."),
	metadata("metadata.goog"),
	metadata("metadata"),
	metadata("instance-data"),
	metadata("instance-data.ec2.internal"),
	metadata("metadata.tencentyun.com"),
	metadata("ｍｅｔａｄａｔａ.google.internal"),
	metadata("metadata。google。internal"),
	// Names whose answers are all refused.
	dns("loopback.example.com", "127.0.0.1"),
	dns("loopback6.example.com", "::1"),
	dns("mapped.example.com", "::ffff:127.0.0.1"),
	dns("private.example.com", "10.0.0.1", "192.168.0.1"),
	dns("imds.example.com", "169.254.169.254"),
	dns("imds6.example.com", "fd00:ec2::254"),
	dns("zero.example.com", "0.0.0.0"),
	dns("nat64.example.com", "64:ff9b::7f00:1"),
	dns("127.0.0.1.nip.io", "127.0.0.1"),
	dns("localtest.me", "127.0.0.1"),
	dns("localhost.localdomain", "127.0.0.1"),
	dns("ip6-localhost", "::1"),
	// Names whose answers mix admitted and refused addresses.
	dns("mixed.example.com", Allowed, "127.0.0.1"),
	dns("mixed-first.example.com", "127.0.0.1", Allowed),
	dns("mixed6.example.com", Allowed, "::1"),
	dns("mixed-private.example.com", Allowed, "10.0.0.1"),
	dns("mixed-imds.example.com", Allowed, "169.254.169.254"),
	dns("mixed-mapped.example.com", Allowed, "::ffff:127.0.0.1"),
	dns("mixed-public.example.com", "93.184.215.14", "127.0.0.1"),
	dns("mixed-public6.example.com", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "fd00::1"),
	// Names that re-resolve to a refused address after an admitted one.
	rebinding("rebind.example.com", Allowed, "127.0.0.1"),
	rebinding("rebind6.example.com", Allowed, "::1"),
	// Redirects from an admitted receiver to refused targets.
	redirect("r1.redirect.example.com", 302, "http://127.0.0.1:"+Port+"/"),
	redirect("r2.redirect.example.com", 307, "http://169.254.169.254/latest/meta-data/"),
	redirect("r3.redirect.example.com", 301, "http://localhost:"+Port+"/"),
	redirect("r4.redirect.example.com", 308, "http://[::1]:"+Port+"/"),
	redirect("r5.redirect.example.com", 303, "http://metadata.google.internal/computeMetadata/v1/"),
	redirect("r6.redirect.example.com", 302, "http://0x7f000001:"+Port+"/"),
	redirect("r7.redirect.example.com", 302, "http://loopback.example.com:"+Port+"/"),
}
