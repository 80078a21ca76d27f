package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
)

// helpRequested ends a command that was asked for --help (or -h, or
// `help`): run prints the text to stdout and exits 0, as every CLI does.
type helpRequested struct{ text string }

func (h *helpRequested) Error() string { return "help requested" }

// parseFlags parses args with fs, allowing flags after positional arguments
// (`certgate user revoke-sessions --config F alice --at T`), and returns the
// positionals. Errors are usage errors (exit 2); --help is [helpRequested].
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, commandHelp(fs)
			}
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

// commandHelp is the usage lines of the command fs parses for, taken from
// the top-level usage text, followed by its flags.
func commandHelp(fs *flag.FlagSet) *helpRequested {
	var b bytes.Buffer
	b.WriteString(usageOf(fs.Name()))
	b.WriteString("\nFlags:\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return &helpRequested{text: b.String()}
}

// usageOf returns the lines of the usage texts that describe cmd (such as
// "ca" or "ca list"), each with its continuation lines.
func usageOf(cmd string) string {
	var b strings.Builder
	seen := map[string]bool{}
	in := false
	for _, l := range strings.Split(usage+"\n"+caUsage, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "certgate ") {
			in = (t == "certgate "+cmd || strings.HasPrefix(t, "certgate "+cmd+" ")) && !seen[t]
			seen[t] = true
		} else if !strings.HasPrefix(l, "        ") {
			in = false
		}
		if in {
			b.WriteString(l + "\n")
		}
	}
	if b.Len() == 0 {
		return "Usage: certgate " + cmd + "\n"
	}
	return "Usage:\n" + b.String()
}

// isHelp says whether a subcommand position holds a help request.
func isHelp(arg string) bool {
	return arg == "--help" || arg == "-help" || arg == "-h" || arg == "help"
}
