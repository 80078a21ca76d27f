//go:build !unix

package main

// lockDemoDir is a no-op where flock is missing; the demo still takes its
// port before it writes into the folder.
func lockDemoDir(dir string) (release func(), err error) { return func() {}, nil }
