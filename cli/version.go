// The version and help commands.

package cli

import (
	"errors"
	"fmt"
	"runtime/debug"
)

var versionHelp = help{
	usage:       []string{"version"},
	description: `Prints piperun's version, and the Go version and source revision it was built from.`,
	examples:    `piperun version`,
}

func cmdVersion(e *env, args []string) error {
	fs := e.flagSet()
	if _, err := e.parse(fs, versionHelp, args, 0, 0, ""); err != nil {
		return err
	}
	v, extra := Version, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		extra = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				extra += ", revision " + s.Value[:12]
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if extra != "" {
		v += " (" + extra + ")"
	}
	fmt.Fprintf(e.stdout, "piperun %s\n", v)
	return nil
}

var helpHelp = help{
	usage:       []string{"help [COMMAND [SUBCOMMAND]]"},
	description: `Shows the list of commands, or the help of one command (the same as 'piperun COMMAND --help').`,
	examples:    "piperun help restorepiperun\npiperun help user add",
}

func cmdHelp(e *env, args []string) error {
	fs := e.flagSet()
	pos, err := e.parse(fs, helpHelp, args, 0, 2, "")
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		topHelp(e.stdout)
		return nil
	}
	cmd, ok := lookup(pos[0])
	if !ok {
		return usagef("unknown command %q", pos[0])
	}
	e.path = pos[0]
	err = cmd.run(e, append(pos[1:], "--help"))
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}
