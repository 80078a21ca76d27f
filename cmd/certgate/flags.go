package main

import (
	"flag"
	"io"
)

// parseFlags parses args with fs, allowing flags after positional arguments
// (`certgate user revoke-sessions --config F alice --at T`), and returns the
// positionals. Errors are usage errors (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageErr("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
