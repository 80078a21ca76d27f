// Package config reads, defaults, validates and edits certgate's YAML
// configuration file.
//
// Loading happens in separate steps, so that each can be reasoned about and
// tested alone:
//
//  1. decode: strict YAML (unknown keys are errors) into [Config];
//  2. defaults: one function fills every value the file left out;
//  3. load: the trusted CA certificates are read and parsed, and the other
//     files the config names are checked to exist;
//  4. validate: [Config.Validate] checks the whole config and never mutates it.
//
// [Load] and [Parse] do all four; [Decode] does the first two only. Every
// error names the file, the line and the key path, for example
//
//	certgate.yaml:17: trustedCertificateAuthorities[1].trustedIssuerSKI: does not match the certificate's SKI 5F3A…
//
// # Relative paths
//
// Paths in the file are relative to the folder of the file. The config keeps
// them as written; resolve them with [Config.Path].
//
// # Editing
//
// [ListCAs], [AddCA], [RemoveCA] and [SetCA] back `certgate ca`. They edit the
// file as text at positions found through the YAML node tree, so comments,
// blank lines, quoting and indentation outside the change stay byte for byte
// as they were; the result must load, or the file is left untouched.
//
// The package imports no other certgate package.
package config
