// Package web is the browser-app example: certgate.yaml and users.yaml put
// certgate in front of a web app, the app command serves a tiny one
// (package webapp) that renders a page for the identity header. The
// package's test checks that certgate.yaml passes the same validation
// `certgate validate` runs.
package web
