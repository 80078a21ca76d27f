// Package testsogo runs a real SOGo groupware server for one test, with
// everything it needs around it: PostgreSQL for SOGo's own tables,
// memcached, dovecot IMAP for the mail, an SMTP receiver that delivers
// through dovecot-lda, and sogod itself with its ActiveSync bundle — all
// processes the test starts on 127.0.0.1 under a temporary folder and
// stops when it ends. The users come from an LDAP server the caller runs
// (internal/testldap).
//
// SOGo trusts the user named in x-webobjects-remote-user
// (SOGoTrustProxyAuthentication), so whatever reaches sogod's port is
// signed in as that user: the stack puts a [Tap] in front of sogod that
// records every byte sent to it, so that tests can show what a client's
// request looked like by the time it reached SOGo.
//
// SOGo signs in to IMAP as the user with the password the proxy passed
// on, which is none: dovecot here accepts any password for connections
// from 127.0.0.1 (a static passdb with nopassword and allow_nets), the
// trusted-network rule examples/sogo/README.md describes for a
// deployment.
//
// Two things a Debian host has that sogod lacks are supplied here too: a
// file server for SOGo's WebServerResources (sogod does not serve its own
// scripts and styles; Debian's sample Apache configuration aliases them),
// and CONDSTORE switched on in each mailbox [Stack.Deliver] fills (SOGo's
// ActiveSync reads HIGHESTMODSEQ from a plain SELECT, which dovecot sends
// only once some client has enabled CONDSTORE there).
//
// The programs are Debian's packages sogo, sogo-activesync, dovecot-imapd,
// postgresql and memcached. [Start] skips the test, with the package to
// install, when one of them is missing. sogod refuses to run as root and
// dovecot must start as root to drop to its own users, so the stack needs
// root; outside CI a non-root run skips, in CI it fails.
package testsogo
