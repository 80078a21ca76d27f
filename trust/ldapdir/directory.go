package ldapdir

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certgate/certgate/trust"
	"github.com/go-ldap/ldap/v3"
)

// searchSizeLimit caps the entries one lookup reads: more than one match is
// already ambiguous, so a few are enough to say so.
const searchSizeLimit = 8

// Directory finds users in an LDAP directory. It is safe for concurrent use.
type Directory struct {
	s     *settings
	pool  *pool
	cache *cache

	mu      sync.Mutex
	flights map[key]*flight
	closed  atomic.Bool
	lastOK  time.Time // last time the server answered, by s.now
	failing bool      // the last contact failed
	wg      sync.WaitGroup

	// Test hooks (export_test.go): onFetch runs first in each search
	// goroutine, onJoin when a lookup joins a search in progress.
	onFetch, onJoin func()
}

var _ trust.Directory = (*Directory)(nil)

// New validates opts and returns a Directory. It does not connect: the first
// Lookup or Ready does, so a directory that is down at start-up delays
// nothing but those calls.
func New(opts Options) (*Directory, error) {
	s, err := newSettings(opts)
	if err != nil {
		return nil, err
	}
	maxAge := max(s.CacheTTL, s.NegativeTTL) + s.MaxStale
	return &Directory{
		s:       s,
		pool:    newPool(s),
		cache:   newCache(s.CacheSize, maxAge),
		flights: make(map[key]*flight),
	}, nil
}

// Lookup returns the users whose attr carries value. No such user is zero
// users and a nil error. An error is always a [*trust.Error] with reason
// [trust.DirectoryUnavailable]: the server could not answer and no cached
// answer is recent enough.
func (d *Directory) Lookup(ctx context.Context, attr trust.Attribute, value string) ([]trust.User, error) {
	return d.lookup(ctx, attr, value, d.ttl)
}

// Refresh is [Directory.Lookup] that asks the server again when the cached
// answer is older than maxAge rather than the cache TTL, and caches what it
// hears. certgate's sweep of the users of live connections calls it with
// half the TTL, every half TTL, so a change in the directory reaches those
// connections within the TTL even though no handshake asks.
func (d *Directory) Refresh(ctx context.Context, attr trust.Attribute, value string, maxAge time.Duration) ([]trust.User, error) {
	return d.lookup(ctx, attr, value, func(answer) time.Duration { return maxAge })
}

func (d *Directory) lookup(ctx context.Context, attr trust.Attribute, value string, fresh func(answer) time.Duration) ([]trust.User, error) {
	if _, err := d.ldapAttr(attr); err != nil {
		return nil, unavailable(err)
	}
	if d.closed.Load() {
		return nil, unavailable(errClosed)
	}
	k := key{attr, normalise(attr, value)}
	if attr == trust.AttrCertificateUserIDs {
		// The server compares the strings: a DN in AD's order and in RFC
		// 4514 order have one normalised form but are two searches with
		// two answers, so they are cached apart.
		k.value = value
	}
	if k.value == "" {
		return nil, nil
	}
	now := d.s.now()
	cached, ok := d.cache.get(k)
	if ok && now.Sub(cached.at) < fresh(cached) {
		return cloneUsers(cached.users), nil
	}
	servable := ok && now.Sub(cached.at) < d.ttl(cached)+d.s.MaxStale
	f, err := d.start(k, attr, value)
	if err != nil {
		return nil, unavailable(err)
	}
	if servable && d.down() {
		// Known down: answer from the cache now rather than make every
		// handshake wait out a Timeout; the search started above refreshes
		// the entry if the server is back.
		return cloneUsers(cached.users), nil
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, unavailable(fmt.Errorf("lookup of %s %q: %w", attr, value, ctx.Err()))
	}
	if f.err == nil {
		return cloneUsers(f.users), nil
	}
	if servable && d.s.now().Sub(cached.at) < d.ttl(cached)+d.s.MaxStale {
		d.s.logger.Debug("ldap directory: serving a stale answer", "attribute", string(attr), "age", d.s.now().Sub(cached.at), "error", f.err)
		return cloneUsers(cached.users), nil
	}
	return nil, unavailable(fmt.Errorf("lookup of %s %q: %w", attr, value, f.err))
}

// Ready reports whether lookups can be answered: nil when a probe (bind and
// base-object search) succeeds, or when the server last answered within
// MaxStale, the window in which cached users are still served. Otherwise a
// [*trust.Error] with reason [trust.DirectoryUnavailable].
func (d *Directory) Ready(ctx context.Context) error {
	err := d.do(ctx, func(c *conn) error {
		_, err := c.search(ldap.NewSearchRequest(d.s.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, int(d.s.Timeout/time.Second), false, "(objectClass=*)", []string{"1.1"}, nil), d.s.Timeout)
		return err
	})
	if err == nil {
		return nil
	}
	d.mu.Lock()
	lastOK := d.lastOK
	d.mu.Unlock()
	if !lastOK.IsZero() && d.s.now().Sub(lastOK) < d.s.MaxStale {
		return nil
	}
	if lastOK.IsZero() {
		return unavailable(fmt.Errorf("never reached %s: %w", d.s.URL, err))
	}
	return unavailable(fmt.Errorf("%s unreachable since at least %s, past maxStale %v: %w",
		d.s.URL, lastOK.Format(time.RFC3339), d.s.MaxStale, err))
}

// Close closes the pooled connections and waits for searches in progress
// (each bounded by Timeout). Lookups after Close fail.
func (d *Directory) Close() error {
	d.mu.Lock()
	d.closed.Store(true) // under mu: no search starts after this
	d.mu.Unlock()
	d.pool.close()
	d.wg.Wait()
	return nil
}

func unavailable(err error) *trust.Error {
	return &trust.Error{Reason: trust.DirectoryUnavailable, Err: fmt.Errorf("ldapdir: %w", err)}
}

func (d *Directory) ttl(a answer) time.Duration {
	if len(a.users) == 0 {
		return d.s.NegativeTTL
	}
	return d.s.CacheTTL
}

func (d *Directory) ldapAttr(attr trust.Attribute) (string, error) {
	a := d.s.Attributes
	switch attr {
	case trust.AttrUserPrincipalName:
		return a.UserPrincipalName, nil
	case trust.AttrProxyAddresses:
		return a.ProxyAddresses, nil
	case trust.AttrCertificateUserIDs:
		return a.CertificateUserIDs, nil
	}
	return "", fmt.Errorf("unsupported user attribute %q", attr)
}

// down reports whether the last contact with the server failed.
func (d *Directory) down() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failing
}

// start joins the search in progress for k or starts one. The search runs
// on its own, bounded by Timeout, so that a caller that gives up does not
// cancel it for the others waiting.
func (d *Directory) start(k key, attr trust.Attribute, value string) (*flight, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() {
		return nil, errClosed
	}
	if f, ok := d.flights[k]; ok {
		if d.onJoin != nil {
			d.onJoin()
		}
		return f, nil
	}
	f := &flight{done: make(chan struct{})}
	d.flights[k] = f
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if d.onFetch != nil {
			d.onFetch()
		}
		f.users, f.err = d.search(attr, value)
		if f.err == nil {
			d.cache.put(k, answer{users: f.users, at: d.s.now()})
		}
		d.mu.Lock()
		delete(d.flights, k)
		d.mu.Unlock()
		close(f.done)
	}()
	return f, nil
}

// search asks the server for the users whose attr carries value.
func (d *Directory) search(attr trust.Attribute, value string) ([]trust.User, error) {
	name, err := d.ldapAttr(attr)
	if err != nil {
		return nil, err
	}
	values := []string{value}
	if attr == trust.AttrProxyAddresses {
		// The server's caseIgnoreMatch covers SMTP: and smtp:; the bare
		// value finds entries stored without a prefix, as users.yaml does.
		v := stripSMTP(value)
		values = []string{"smtp:" + v, v}
	}
	req := ldap.NewSearchRequest(d.s.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		searchSizeLimit, int(d.s.Timeout/time.Second), false, d.s.filter.build(name, values...), d.s.attrs, nil)
	var res *ldap.SearchResult
	err = d.do(context.Background(), func(c *conn) error {
		var err error
		res, err = c.search(req, d.s.Timeout)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) && res != nil && len(res.Entries) > 0 {
			// Enough entries to show the value is ambiguous.
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var users []trust.User
	for _, e := range res.Entries {
		u, err := userFromEntry(e, d.s.Attributes)
		if err != nil {
			return nil, err
		}
		if matches(u, attr, value) {
			users = append(users, u)
		}
	}
	return users, nil
}

// do runs op on a pooled connection and records whether the server
// answered. A reused connection that fails at the network level is retried
// once on a fresh one: servers close idle connections, and a restarted
// server leaves every pooled one dead.
func (d *Directory) do(ctx context.Context, op func(*conn) error) error {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		ctx, cancel := context.WithTimeout(ctx, d.s.Timeout)
		c, reused, gerr := d.pool.get(ctx)
		cancel()
		if gerr != nil {
			err = gerr
			break
		}
		err = op(c)
		broken := err != nil && !serverResult(err)
		d.pool.put(c, broken)
		if !broken || !reused {
			break
		}
	}
	d.record(err)
	return err
}

// record notes the outcome of a contact and logs changes of state.
func (d *Directory) record(err error) {
	if errors.Is(err, errClosed) {
		return
	}
	now := d.s.now()
	d.mu.Lock()
	wasDown := d.failing
	d.failing = err != nil
	if err == nil {
		d.lastOK = now
	}
	d.mu.Unlock()
	switch {
	case err != nil && !wasDown:
		d.s.logger.Warn("ldap directory unreachable; serving cached answers up to maxStale",
			"url", d.s.URL, "maxStale", d.s.MaxStale, "error", err)
	case err == nil && wasDown:
		d.s.logger.Info("ldap directory reachable again", "url", d.s.URL)
	}
}
