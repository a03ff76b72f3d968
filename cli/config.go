// The config command: showing and replacing a run's configuration.

package cli

import (
	"fmt"
	"strings"
)

func cmdConfig(e *env, args []string) error {
	return e.dispatch([]subcommand{
		{name: "get", summary: "print a run's current configuration", run: cmdConfigGet},
		{name: "set", summary: "replace a run's configuration", run: cmdConfigSet},
	}, args)
}

var configSetHelp = help{
	usage: []string{"config set RUN FILE"},
	description: `
Replaces the configuration of the run RUN with the one in FILE ('-' reads
standard input). The server checks it as initpiperun does. The change takes
effect at the next 'piperun runpipeline RUN': if it only adds images to a
completed run, they are processed in add mode and the run can later be
restored to its current version; any other change needs --full-rerun.`,
	env: clientEnv,
	examples: `
piperun config get my-run > my-run.yaml
$EDITOR my-run.yaml    # add epoch05 to the inputs
piperun config set my-run my-run.yaml`,
}

func cmdConfigSet(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	pos, err := e.parse(fs, configSetHelp, args, 2, 2, "arguments: config set RUN FILE")
	if err != nil {
		return err
	}
	text, err := e.readFile(pos[1])
	if err != nil {
		return err
	}
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	d, err := r.PutConfig(e.ctx, pos[0], text)
	if err != nil {
		return r.explain(err)
	}
	fmt.Fprintf(e.stdout, "Configuration of run %s replaced (version %d). Process it with: piperun runpipeline %s\n", d.Name, d.Version, d.Name)
	return nil
}

var configGetHelp = help{
	usage: []string{"config get RUN [--version N]"},
	description: `
Prints the current configuration of the run RUN (which may have changed
since it was last processed), or with --version its configuration at that
version of its history (see 'piperun history RUN').`,
	env: clientEnv,
	examples: `
piperun config get my-run > my-run.yaml
piperun config get my-run --version 3`,
}

func cmdConfigGet(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	version := fs.Int64("version", 0, "show the configuration at this version of the run's history")
	pos, err := e.parse(fs, configGetHelp, args, 1, 1, "the RUN")
	if err != nil {
		return err
	}
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	d, err := e.getRun(r, pos[0], *version)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, d.Config)
	if !strings.HasSuffix(d.Config, "\n") {
		fmt.Fprintln(e.stdout)
	}
	return nil
}
