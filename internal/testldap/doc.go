// Package testldap runs a real OpenLDAP server (slapd) for one test, with
// the Active Directory attribute names certgate reads, so that the LDAP
// directory's own tests and the end-to-end tests of `certgate serve` and
// `certgate check` start, fill, stop and restart it the same way.
//
// Each [Server] lives under the test's t.TempDir(): its own slapd.conf, the
// embedded AD-like schema (certgate-ad.schema), an mdb database and a TLS
// certificate from an in-process [pkigen] root. It listens on 127.0.0.1
// with ldap:// (for StartTLS) and ldaps://, holds the base entries and a
// read-only service account ([ReaderDN], [ReaderPassword]), and is killed
// when the test ends.
//
// slapd is an external program: outside CI (the CI environment variable
// empty) a missing slapd skips the test; in CI it fails it. CI installs the
// Debian packages slapd and ldap-utils.
//
//	s := testldap.Start(t)
//	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
//	dir, _ := ldapdir.New(ldapdir.Options{URL: s.LDAPSURL, RootCAs: s.Pool,
//		BindDN: testldap.ReaderDN, Password: testldap.ReaderPassword, BaseDN: testldap.Suffix})
//	s.Stop()    // as a crash would
//	s.Restart() // same ports, same data
package testldap
