// Command app serves the example web app (package webapp) on a loopback
// address or a Unix socket, for certgate to front:
//
//	go run ./examples/web/app -listen 127.0.0.1:8082
//	go run ./examples/web/app -unix /run/certgate/web.sock
//
// It trusts the identity header it is given, so it must be reachable only
// by the proxy.
package main
