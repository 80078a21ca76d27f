package revocation

// WaitBackground waits for the fetches RequestFresh and the OCSP refresh
// behind started, so tests synchronise without sleeping.
func WaitBackground(c *Checker) { c.bg.Wait() }
