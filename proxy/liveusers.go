package proxy

import (
	"slices"
	"strings"
	"time"
)

// LiveUsers returns the users bound to open client connections, each once
// (in lower case), so that a directory without change notification (LDAP)
// can be asked about exactly them.
func (s *Server) LiveUsers() []string {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	var out []string
	for _, ci := range s.conns.byConn {
		ci.mu.Lock()
		u := strings.ToLower(ci.user)
		ci.mu.Unlock()
		if u != "" {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CloseUser closes every open connection of the user upn: the directory
// no longer admits the user (disabled, or gone). A resumed session is
// decided again in its handshake, against the directory, so it needs no
// ticket epoch.
func (s *Server) CloseUser(upn string) int {
	return s.conns.closeUser(upn, time.Unix(1<<62, 0))
}
