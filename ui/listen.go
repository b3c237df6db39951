package ui

import (
	"fmt"
	"net"
	"net/netip"
)

// CheckListen refuses a page without sign-in on an address others can reach: without
// sign-in, whoever reaches the page reads every repository's history, so it may listen on
// loopback only.
func CheckListen(listen string, signIn bool) error {
	if signIn || loopback(listen) {
		return nil
	}
	return fmt.Errorf("ui.enabled without sign-in configured, and the page would listen on %q, not on loopback only: configure sign-in (docs/history.md#signing-in) or set ui.listen to a loopback address such as 127.0.0.1:8081", listen)
}

func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
