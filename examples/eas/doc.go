// Package eas is the Exchange ActiveSync example: certgate.yaml and
// users.yaml put certgate in front of an EAS server, the backend command
// serves a toy one, and easclient talks to either. The package's test
// checks that certgate.yaml passes the same validation `certgate validate`
// runs.
package eas
