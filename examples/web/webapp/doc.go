// Package webapp is a tiny web application that trusts a front proxy for
// authentication: it renders a page for the user named in an identity
// header (X-Remote-User by default), shows the client certificate when the
// proxy forwards it (RFC 9440 Client-Cert or Envoy's
// X-Forwarded-Client-Cert), streams server-sent events and echoes
// WebSocket messages, so certgate's examples and end-to-end tests can show
// a browser app behind the proxy.
//
// A request without the identity header gets 401: an app behind a trusted
// proxy must not serve anonymous requests. It must only ever listen where
// nothing but the proxy can reach it (loopback, a Unix socket, a pod
// network with a NetworkPolicy): it believes the headers it is given.
package webapp
