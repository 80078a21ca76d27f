package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/certgate/certgate/trust"
)

// sweepInterval is how often the users of live connections are checked
// against an LDAP directory: half its cache TTL, so that with answers
// refreshed once they are half a TTL old, a change reaches a connection
// within the TTL. Bounded so a tiny TTL cannot turn it into a busy loop.
func sweepInterval(b *built) time.Duration {
	if b == nil || b.ldap == nil || b.cfg.Identity.Directory == nil || b.cfg.Identity.Directory.LDAP == nil {
		return time.Minute // not LDAP now; look again later (a reload may switch)
	}
	return min(max(b.cfg.Identity.Directory.LDAP.CacheTTL.Duration/2, time.Second), 30*time.Minute)
}

// sweepDirectories runs sweepDirectory every sweepInterval until ctx ends.
func (inst *instance) sweepDirectories(ctx context.Context) {
	for {
		inst.mu.Lock()
		b := inst.current
		inst.mu.Unlock()
		t := time.NewTimer(sweepInterval(b))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			inst.sweepDirectory(ctx)
		}
	}
}

// sweepDirectory carries LDAP directory changes to live connections, as a
// reload of users.yaml does for the file directory: a user of an open
// connection who is now disabled or gone has the connection closed, and a
// raised sessionsValidFrom closes the connections and refuses the TLS
// sessions from before it (and asks for a fresh CRL, as revoke-sessions
// does). A directory that does not answer changes nothing: the cached
// answers stand for maxStale, as for handshakes.
func (inst *instance) sweepDirectory(ctx context.Context) {
	inst.sweepMu.Lock()
	defer inst.sweepMu.Unlock()
	inst.mu.Lock()
	b := inst.current
	inst.mu.Unlock()
	if b == nil || b.ldap == nil {
		return
	}
	if inst.seenValidFrom == nil {
		inst.seenValidFrom = map[string]time.Time{}
	}
	maxAge := b.cfg.Identity.Directory.LDAP.CacheTTL.Duration / 2
	var latest time.Time
	for _, upn := range inst.srv.LiveUsers() {
		users, err := b.ldap.Refresh(ctx, trust.AttrUserPrincipalName, upn, maxAge)
		if err != nil {
			continue
		}
		why := ""
		switch {
		case len(users) == 0:
			why = "no longer in the directory"
		case len(users) > 1:
			why = "ambiguous in the directory"
		case !users[0].AccountEnabled:
			why = "disabled in the directory"
		}
		if why != "" {
			n := inst.srv.CloseUser(upn)
			inst.log.Info("connections closed", "user", upn, "why", why, "closed_connections", n)
			continue
		}
		vf := users[0].SessionsValidFrom
		if vf.IsZero() || !vf.After(inst.seenValidFrom[strings.ToLower(upn)]) {
			continue
		}
		inst.seenValidFrom[strings.ToLower(upn)] = vf
		n := inst.srv.RevokeSessions(upn, vf)
		level := slog.LevelDebug // a sessionsValidFrom older than every connection: first seen, nothing cut
		if n > 0 {
			level = slog.LevelInfo
		}
		inst.log.Log(ctx, level, "sessions revoked", "user", upn, "valid_from", vf.UTC().Format(time.RFC3339), "closed_connections", n, "directory", "ldap")
		if vf.After(latest) {
			latest = vf
		}
	}
	inst.requestFreshCRLs(b.sources, latest)
}
