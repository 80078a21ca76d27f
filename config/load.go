package config

import (
	"fmt"
	"os"
	"strconv"
)

// loadFiles reads the trusted CA certificates into CA.Certificate and checks
// that every other file the config names is a readable regular file, so that
// `certgate validate` finds a wrong path before `serve` does. It returns the
// problems and the indexes of the CAs whose certificate could not be read.
func (c *Config) loadFiles() ([]*Error, map[int]bool) {
	var errs []*Error
	failed := map[int]bool{}
	for i := range c.CAs {
		ca := &c.CAs[i]
		key := "trustedCertificateAuthorities[" + strconv.Itoa(i) + "].trustedCertificate"
		if ca.TrustedCertificate == "" {
			continue // Validate reports the missing key
		}
		cert, err := ParseCertificateFile(c.Path(ca.TrustedCertificate))
		if err != nil {
			errs = append(errs, c.Errorf(key, "%w", err))
			failed[i] = true
			continue
		}
		ca.Certificate = cert
	}

	check := func(key, p string) {
		if p == "" {
			return
		}
		if err := checkFile(c.Path(p)); err != nil {
			errs = append(errs, c.Errorf(key, "%w", err))
		}
	}
	check("serverTLS.certFile", c.ServerTLS.CertFile)
	check("serverTLS.keyFile", c.ServerTLS.KeyFile)
	check("serverTLS.sessionTicketKeyFile", c.ServerTLS.SessionTicketKeyFile)
	check("admin.tokenFile", c.Admin.TokenFile)
	if a := c.ServerTLS.ACME; a != nil {
		check("serverTLS.acme.trustedRoots", a.TrustedRoots)
	}
	if d := c.Identity.Directory; d != nil {
		check("identity.directory.file", d.File)
		if l := d.LDAP; l != nil {
			check("identity.directory.ldap.caFile", l.CAFile)
			check("identity.directory.ldap.passwordFile", l.PasswordFile)
		}
	}
	for i, r := range c.Routes {
		p := "routes[" + strconv.Itoa(i) + "]"
		check(p+".backendCA", r.BackendCA)
		check(p+".backendClientCert", r.BackendClientCert)
		check(p+".backendClientKey", r.BackendClientKey)
		if a := r.Assertion; a != nil {
			for j, k := range a.Keys {
				check(p+".assertion.keys["+strconv.Itoa(j)+"]", k)
			}
		}
	}
	return errs, failed
}

func checkFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}
