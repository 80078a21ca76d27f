package trust_test

import (
	"testing"

	"github.com/certgate/certgate/trust"
)

// TestCertificateUserIDKey: spellings that name the same mapping meet;
// others do not.
func TestCertificateUserIDKey(t *testing.T) {
	same := [][]string{
		{"X509:<I>CN=Contoso CA,DC=contoso,DC=com<SR>0A1B", "x509:<i>DC=com,DC=contoso,CN=Contoso CA<sr>0a1b",
			"X509:<I>cn=contoso  ca, dc=CONTOSO ,DC=com<SR>0A1B", "X509:<I>2.5.4.3=Contoso CA,0.9.2342.19200300.100.1.25=contoso,DC=com<SR>0A1B"},
		{"X509:<S>CN=alice,OU=Users,DC=contoso,DC=com", "X509:<S>DC=com,DC=contoso,OU=Users,CN=alice"},
		{"X509:<I>CN=CA,O=X<S>CN=bob,O=X", "X509:<I>O=X,CN=CA<S>O=X,CN=bob"},
		{"X509:<SKI>5f3a", "X509:<SKI>5F3A", "x509:<ski>5F3a"},
		{"X509:<S>E=a@b.c,CN=a", "X509:<S>emailAddress=a@b.c,CN=a", "X509:<S>CN=a,1.2.840.113549.1.9.1=a@b.c"},
		{"X509:<S>CN=a\\, b,O=X", "X509:<S>O=X,CN=a\\2C b"},
	}
	for _, group := range same {
		for _, v := range group[1:] {
			if a, b := trust.CertificateUserIDKey(group[0]), trust.CertificateUserIDKey(v); a != b {
				t.Errorf("%q and %q differ: %q / %q", group[0], v, a, b)
			}
		}
	}
	differ := [][2]string{
		{"X509:<I>CN=Contoso CA,DC=contoso,DC=com<SR>0A1B", "X509:<I>CN=Contoso CA,DC=contoso,DC=org<SR>0A1B"},
		{"X509:<I>CN=Contoso CA,DC=contoso,DC=com<SR>0A1B", "X509:<I>CN=Contoso CA,DC=contoso,DC=com<SR>1B0A"},
		{"X509:<S>CN=a,O=X", "X509:<S>CN=a,OU=X"},
		{"X509:<S>CN=a b,O=X", "X509:<S>CN=ab,O=X"},
		{"X509:<S>CN=a,O=X", "X509:<I>CN=a,O=X<S>CN=a,O=X"},
		{"X509:<PN>Alice@contoso.com", "X509:<PN>alice@contoso.com"},
	}
	for _, d := range differ {
		if trust.CertificateUserIDKey(d[0]) == trust.CertificateUserIDKey(d[1]) {
			t.Errorf("%q and %q meet", d[0], d[1])
		}
	}
	// What does not parse is compared as it is.
	for _, v := range []string{"", "X509:", "X509:<S>CN", "X509:<S>\\", "SMTP:a@b"} {
		_ = trust.CertificateUserIDKey(v)
	}
}

func FuzzCertificateUserIDKey(f *testing.F) {
	f.Add("X509:<I>DC=com,DC=contoso,CN=Contoso CA<SR>0a1b")
	f.Add("X509:<S>CN=a\\2C b+OU=x,O=X")
	f.Fuzz(func(t *testing.T, s string) {
		k := trust.CertificateUserIDKey(s)
		if trust.CertificateUserIDKey(k) != k {
			t.Errorf("key of %q is not stable: %q -> %q", s, k, trust.CertificateUserIDKey(k))
		}
	})
}
