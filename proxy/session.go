package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// Session tickets and instant revocation (SPEC step 4).
//
// A resumed TLS session carries the client certificate from its ticket and
// never presents it again. VerifyConnection still runs on resumption and
// re-decides chain, revocation, binding and user state, but it cannot tell
// when the session was first established, so a session set up before a
// user's sessions were revoked would resume as soon as a fresh CRL is in
// force. Every ticket is therefore stamped with a lower bound of the time
// its session was established, and a ticket stamped before the latest
// revocation the server has applied is not resumed: the client falls back
// to a full handshake, presents its certificate, and is decided afresh.
//
// The cut-off (the epoch) is server-wide, not per user: a revocation of one
// user's sessions makes every client do one full handshake. That costs a
// handshake per client per revocation, which is rare, and needs no per-user
// state in tickets or in memory. Stamps err early, never late: a full
// handshake's ticket is stamped a handshake window (about two minutes)
// before it is sealed, and a resumed session's successor carries the epoch
// it was resumed under, so sessions set up just after a revocation may need
// one more full handshake, and none set up before it ever resumes.
//
// Tickets are sealed with the keys of the Server's base tls.Config, not of
// the per-policy config: [tls.Config.EncryptTicket] uses the keys of the
// config it is called on, and a per-policy config without keys of its own
// would mint fresh random ones, so every reload would silently end
// resumption. [Server.SetSessionTicketKeys] sets the base config's keys too,
// so shared keys keep working across replicas and reloads.

// sessionStampTag starts the SessionState.Extra entry certgate adds;
// crypto/tls asks users of Extra to append entries that are recognisable in
// any order.
var sessionStampTag = []byte("certgate/session-issued/v1:")

// sessionStampLen is the tag plus an int64 of Unix nanoseconds.
var sessionStampLen = len(sessionStampTag) + 8

// sessionGuard holds the epoch: tickets issued before it are not resumed.
type sessionGuard struct {
	mu    sync.Mutex // serialises raise
	state atomic.Pointer[epochState]
}

// epochState is immutable once published.
type epochState struct {
	cur int64 // Unix ns; 0 means no revocation applied yet
	// prev is the epoch in force before the current burst of raises, and
	// raisedAt (monotonic) when the latest raise happened. A handshake that
	// unwrapped its ticket under prev may wrap its successor after a raise.
	prev     int64
	raisedAt time.Time
}

// sessionHandshakeWindow bounds how long a handshake can take from reading
// the ClientHello to sending its ticket: net/http's handshake deadline
// (ReadHeaderTimeout) plus the time VerifyConnection may spend in a
// directory lookup.
func (s *Server) sessionHandshakeWindow() time.Duration {
	return s.opts.Limits.ReadHeaderTimeout + 2*time.Minute
}

func (g *sessionGuard) load() epochState {
	if st := g.state.Load(); st != nil {
		return *st
	}
	return epochState{}
}

// raise moves the epoch forward to t; it never goes back.
func (g *sessionGuard) raise(t time.Time, window time.Duration) {
	if t.IsZero() {
		return
	}
	n := t.UnixNano()
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.load()
	if n <= old.cur {
		return
	}
	next := epochState{cur: n, prev: old.cur, raisedAt: time.Now()}
	if !old.raisedAt.IsZero() && time.Since(old.raisedAt) < window {
		// Still within the previous raise's window: a handshake may have
		// unwrapped its ticket under the epoch before that raise.
		next.prev = old.prev
	}
	g.state.Store(&next)
}

// RefuseSessionsIssuedBefore stops the resumption of every TLS session
// (of any user) whose ticket was issued before t. The cut-off only moves
// forward. [Server.RevokeSessions] calls it; call it at start with the
// latest stsRefreshTokensValidFrom on file when ticket keys outlive the
// process.
func (s *Server) RefuseSessionsIssuedBefore(t time.Time) {
	s.sessions.raise(t, s.sessionHandshakeWindow())
}

// wrapSession is the per-policy tls.Config's WrapSession.
func (s *Server) wrapSession(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	ss.Extra = append(ss.Extra, sessionStamp(s.issuedStamp(cs.DidResume)))
	return s.base.EncryptTicket(cs, ss)
}

// issuedStamp is the time written into a new ticket: never later than the
// establishment of the session it continues.
func (s *Server) issuedStamp(resumed bool) int64 {
	if !resumed {
		// The ticket is sealed at the end of the handshake; the connection
		// was accepted up to a window earlier, and a revocation in between
		// must catch it.
		return s.now().Add(-s.sessionHandshakeWindow()).UnixNano()
	}
	// A resumed session's ticket passed the epoch check, so its own stamp
	// (which crypto/tls does not hand back) was at or after the epoch it
	// was unwrapped under. That epoch is a safe stamp for the successor;
	// if the epoch moved during this handshake, the one before the move is.
	st := s.sessions.load()
	if !st.raisedAt.IsZero() && time.Since(st.raisedAt) < s.sessionHandshakeWindow() {
		return st.prev
	}
	return st.cur
}

// unwrapSession is the per-policy tls.Config's UnwrapSession. Returning
// (nil, nil) makes crypto/tls ignore the ticket and run a full handshake.
func (s *Server) unwrapSession(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	ss, err := s.base.DecryptTicket(identity, cs)
	if ss == nil || err != nil {
		return nil, err
	}
	issued, ok := sessionIssued(ss.Extra)
	if !ok {
		// Not minted by this code (an older version sharing the ticket
		// keys): its age is unknown, so it is not trusted.
		return nil, nil
	}
	if epoch := s.sessions.load().cur; epoch != 0 && issued < epoch {
		s.log.Debug("TLS session not resumed: issued before sessions were revoked",
			"issued", time.Unix(0, issued).UTC(), "sessions_valid_from", time.Unix(0, epoch).UTC())
		return nil, nil
	}
	return ss, nil
}

func sessionStamp(ns int64) []byte {
	b := make([]byte, 0, sessionStampLen)
	b = append(b, sessionStampTag...)
	return binary.BigEndian.AppendUint64(b, uint64(ns))
}

// sessionIssued finds certgate's stamp among the Extra entries.
func sessionIssued(extra [][]byte) (int64, bool) {
	for _, e := range extra {
		if len(e) == sessionStampLen && bytes.HasPrefix(e, sessionStampTag) {
			return int64(binary.BigEndian.Uint64(e[len(sessionStampTag):])), true
		}
	}
	return 0, false
}
