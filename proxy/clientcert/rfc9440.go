package clientcert

import (
	"crypto/x509"
	"encoding/base64"
	"strings"
)

// RFC9440 returns the values of the Client-Cert and Client-Cert-Chain
// request headers (RFC 9440): each certificate is an RFC 8941 Byte
// Sequence, ":" + base64(DER) + ":", and the chain is a List of them.
//
// chain[0] is the leaf; Client-Cert-Chain carries chain[1:] in the order
// given (TLS order: each certificate certifies the one before). RFC 9440
// allows the trust anchor to be left out; RFC9440 does not decide that, so a
// caller that wants the root omitted passes the chain without it.
// clientCertChain is empty when there is nothing after the leaf, and then
// the header is not sent. Both are empty for an empty chain.
func RFC9440(chain []*x509.Certificate) (clientCert string, clientCertChain string) {
	if len(chain) == 0 {
		return "", ""
	}
	clientCert = byteSequence(chain[0].Raw)
	if len(chain) == 1 {
		return clientCert, ""
	}
	items := make([]string, 0, len(chain)-1)
	for _, c := range chain[1:] {
		items = append(items, byteSequence(c.Raw))
	}
	return clientCert, strings.Join(items, ", ")
}

func byteSequence(der []byte) string {
	return ":" + base64.StdEncoding.EncodeToString(der) + ":"
}
