package ldapdir

// SetTestHooks lets the black-box tests hold a search in progress (onFetch)
// and learn when a lookup has joined it (onJoin). Call before any Lookup.
func SetTestHooks(d *Directory, onFetch, onJoin func()) {
	d.onFetch, d.onJoin = onFetch, onJoin
}
