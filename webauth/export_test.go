package webauth

import "time"

// SetClock makes a reads the time from now (tests of expiry).
func SetClock(a *Auth, now func() time.Time) { a.now = now }
