//go:build tools

// Package main pins the modules certgate will import while packages are being written.
package main

import (
	_ "github.com/caddyserver/certmagic"
	_ "github.com/go-ldap/ldap/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "go.uber.org/zap/exp/zapslog"
	_ "golang.org/x/crypto/cryptobyte"
	_ "golang.org/x/crypto/ocsp"
	_ "golang.org/x/net/http2"
	_ "gopkg.in/yaml.v3"
)

func main() {}
