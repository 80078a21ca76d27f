// Command certgate-bench measures certgate (or any mTLS HTTPS front, such as
// nginx, for a side-by-side comparison) from a standard-library client that
// presents a client certificate: full and resumed handshake rates,
// keep-alive throughput and latency over HTTP/1.1 and HTTP/2, memory per
// idle connection, CRL ingest and lookup cost, and handshake latency while a
// large CRL is being refreshed. It also carries the pieces a comparison
// needs: a PKI with small and million-entry CRLs, an echo backend, a CRL
// server that publishes a new CRL on every fetch, and an in-process certgate
// for CPU and allocation profiles.
//
// Every run is bounded by --duration and by --max operations, and prints
// one JSON line followed by one human line. See README.md.
package main
