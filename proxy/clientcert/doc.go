// Package clientcert formats the verified client certificate for a backend:
// as RFC 9440's Client-Cert and Client-Cert-Chain headers, or as Envoy's
// X-Forwarded-Client-Cert (XFCC) element, and parses XFCC back for tests
// and for backends written in Go.
//
// The formatters take the chain the proxy verified and trust it as given:
// sanitising inbound copies of these headers is the proxy's job, done before
// they are set.
package clientcert
