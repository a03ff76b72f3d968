package cli

import (
	"flag"
	"fmt"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/wiring"
)

var userRevokeHelp = help{
	usage: []string{"user revoke NAME", "user revoke NAME --data-dir DIR"},
	description: `
Withdraws the API token of the user NAME: from the moment the command
returns, the server refuses the token and signs the user out of every web
session, and every other replica does as soon as its read models reach
the revocation (they follow the event log). The user and their runs stay;
'piperun user rotate NAME' gives them a new token.

The command asks the server (--server, --token), and only an
administrator's token may. With --data-dir (or --esdb-url) it writes to
the store directly instead, as 'piperun user add' does, for an operator
who has no administrator's token left.`,
	env: append(append([]string(nil), clientEnv...), dataDirEnv, esdbEnv),
	examples: `
piperun user revoke alice
piperun user revoke alice --data-dir /srv/piperun`,
}

var userRotateHelp = help{
	usage: []string{"user rotate NAME", "user rotate NAME --data-dir DIR"},
	description: `
Gives the user NAME a new API token and prints it, and only it, on
standard output: it is shown this once. The old token stops working, and
the sessions signed in with it end, as with 'piperun user revoke'. A
revoked user gets a token again this way.

The command asks the server (--server, --token), and only an
administrator's token may. With --data-dir (or --esdb-url) it writes to
the store directly instead, as 'piperun user add' does.`,
	env: append(append([]string(nil), clientEnv...), dataDirEnv, esdbEnv),
	examples: `
TOKEN=$(piperun user rotate alice)
piperun user rotate admin --data-dir /srv/piperun`,
}

// userTokenFlags adds the flags of user revoke and rotate: those of a
// client, and those of the store for direct use.
func userTokenFlags(fs *flag.FlagSet) {
	clientFlags(fs)
	dataDirFlag(fs)
	esdbFlag(fs)
}

// direct reports whether the command was pointed at a store rather than a
// server: only a flag given on the command line does (an environment
// variable set for 'serve' does not).
func direct(fs *flag.FlagSet) bool {
	set := setFlags(fs)
	return set["data-dir"] || set["esdb-url"]
}

// operator is who changes a user when the store is used directly: whoever
// can write to it is in effect an administrator.
var operator = domain.Actor{Name: "system:cli", Admin: true}

func cmdUserRevoke(e *env, args []string) error {
	fs := e.flagSet()
	userTokenFlags(fs)
	pos, err := e.parse(fs, userRevokeHelp, args, 1, 1, "the user NAME")
	if err != nil {
		return err
	}
	name := pos[0]
	if direct(fs) {
		c, err := wiring.Open(e.ctx, e.storage(fs))
		if err != nil {
			return fmt.Errorf("revoke the token of user %s: %w", name, err)
		}
		defer c.Close()
		if _, err := c.Svc.RevokeToken(e.ctx, name, operator); err != nil {
			return err
		}
	} else {
		r, err := e.client(fs)
		if err != nil {
			return err
		}
		if err := r.RevokeToken(e.ctx, name); err != nil {
			return r.explain(err)
		}
	}
	fmt.Fprintf(e.stderr, "The API token of user %s is revoked, and their web sessions ended.\n", name)
	return nil
}

func cmdUserRotate(e *env, args []string) error {
	fs := e.flagSet()
	userTokenFlags(fs)
	pos, err := e.parse(fs, userRotateHelp, args, 1, 1, "the user NAME")
	if err != nil {
		return err
	}
	name := pos[0]
	var token string
	if direct(fs) {
		c, err := wiring.Open(e.ctx, e.storage(fs))
		if err != nil {
			return fmt.Errorf("rotate the token of user %s: %w", name, err)
		}
		defer c.Close()
		if token, _, err = c.Svc.RotateToken(e.ctx, name, operator); err != nil {
			return err
		}
	} else {
		r, err := e.client(fs)
		if err != nil {
			return err
		}
		if token, err = r.RotateToken(e.ctx, name); err != nil {
			return r.explain(err)
		}
	}
	fmt.Fprintln(e.stdout, token)
	return nil
}

func cmdUser(e *env, args []string) error {
	return e.dispatch([]subcommand{
		{name: "add", summary: "create a user and print its API token", run: cmdUserAdd},
		{name: "revoke", summary: "withdraw a user's API token and end their web sessions", run: cmdUserRevoke},
		{name: "rotate", summary: "give a user a new API token (printed once); the old one stops working", run: cmdUserRotate},
	}, args)
}

var userAddHelp = help{
	usage: []string{"user add NAME [--admin] [--data-dir DIR]"},
	description: `
Creates the user NAME in a data directory and prints its API token, and
only the token, on standard output: it is shown this once (the service
keeps only its hash). Works whether or not a server is running on the data
directory; a running server accepts the token at once.

User names have 1 to 64 ASCII letters, digits, '.', '_' and '-', and start
with a letter or a digit. Administrators may change any run; other users
only the runs they created. 'piperun user revoke' and 'piperun user rotate'
withdraw or replace a token.`,
	env: []string{dataDirEnv, esdbEnv},
	examples: `
TOKEN=$(piperun user add alice --data-dir /srv/piperun)
piperun user add bob --admin`,
}

func cmdUserAdd(e *env, args []string) error {
	fs := e.flagSet()
	dataDirFlag(fs)
	esdbFlag(fs)
	admin := fs.Bool("admin", false, "make the user an administrator")
	pos, err := e.parse(fs, userAddHelp, args, 1, 1, "the user NAME")
	if err != nil {
		return err
	}
	token, err := wiring.AddUser(e.ctx, e.storage(fs), pos[0], *admin)
	if err != nil {
		return fmt.Errorf("add user %s: %w", pos[0], err)
	}
	fmt.Fprintln(e.stdout, token)
	return nil
}

var whoamiHelp = help{
	usage:       []string{"whoami"},
	description: `Prints the name of the user the API token belongs to, and whether it is an administrator.`,
	env:         clientEnv,
	examples:    `PIPERUN_TOKEN=... piperun whoami`,
}

func cmdWhoAmI(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	if _, err := e.parse(fs, whoamiHelp, args, 0, 0, ""); err != nil {
		return err
	}
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	u, err := r.WhoAmI(e.ctx)
	if err != nil {
		return r.explain(err)
	}
	role := "user"
	if u.Admin {
		role = "administrator"
	}
	fmt.Fprintf(e.stdout, "%s (%s) on %s\n", u.Name, role, r.server)
	return nil
}
