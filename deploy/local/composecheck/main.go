// composecheck validates a docker-compose file with compose-go, the loader `docker compose` itself
// uses (schema, interpolation, depends_on conditions, consistency), for machines without the compose
// plugin. Usage: composecheck FILE WORKDIR. Exit 0 and "OK <n> services", or exit 1 with the reason.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: composecheck FILE WORKDIR")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions([]string{os.Args[1]},
		cli.WithWorkingDirectory(os.Args[2]), cli.WithOsEnv, cli.WithDotEnv,
		cli.WithConsistency(true), cli.WithResolvedPaths(true), cli.WithName("logwarden"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "INVALID:", err)
		os.Exit(1)
	}
	fmt.Println("OK", len(project.Services), "services")
}
