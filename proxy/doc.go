// Package proxy is certgate's data plane: the mTLS listener that decides
// each client certificate through one ordered pipeline (chain, revocation,
// binding, user state), and the HTTP handler that routes admitted requests
// to EAS or web backends with the bound identity injected and every
// client-sent identity header removed.
//
// The package knows nothing of YAML: cmd/certgate turns the configuration
// into a [Policy] and swaps it in with [Server.SetPolicy], which is atomic,
// so a reload never disturbs a handshake in progress.
//
// # Failing closed
//
// A request reaches a backend only with a [Decision] whose reason is "ok",
// taken under the policy in force for that request. Decisions are cached per
// connection, but the cache is keyed by the policy and revocation
// generations, so a reload or a CRL update re-decides every live
// connection on its next request.
package proxy
