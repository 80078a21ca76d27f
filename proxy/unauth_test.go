package proxy

import (
	"net"
	"testing"
)

func TestSourceIPGroupsIPv6By64(t *testing.T) {
	key := func(s string) string { return sourceIP(&net.TCPAddr{IP: net.ParseIP(s), Port: 1}) }
	if a, b := key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"); a != b {
		t.Errorf("one /64 gave two keys: %q %q", a, b)
	}
	if a, b := key("2001:db8:1:2::1"), key("2001:db8:1:3::1"); a == b {
		t.Errorf("two /64s share key %q", a)
	}
	if a, b := key("192.0.2.1"), key("192.0.2.2"); a == b || a != "192.0.2.1" {
		t.Errorf("IPv4 keys %q %q", a, b)
	}
	if a := key("::ffff:192.0.2.1"); a != "192.0.2.1" {
		t.Errorf("IPv4-mapped key %q", a)
	}
}
