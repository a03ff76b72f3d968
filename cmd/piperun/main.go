// Command piperun is the piperun service and its command line: see
// 'piperun --help'. The commands and their flags are in package cli; the
// service's parts are built and started in package wiring.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/piperun/piperun/cli"
)

func main() {
	os.Exit(run())
}

// run runs the command line with a context that ends on SIGINT or
// SIGTERM, so that 'piperun serve' stops cleanly and waiting commands stop
// waiting.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
