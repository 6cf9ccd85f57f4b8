// Command vigil is the Vigil binary: an IoT telemetry store and real-time
// anomaly detector. It parses the command line and hands over to the
// internal packages; it holds no logic of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// command is one subcommand: it parses its own flags from args and runs.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands. Each lives in its own cmd_*.go file.
func commands() map[string]command {
	return map[string]command{
		"version":  {"print the version", cmdVersion},
		"detect":   {"score a CSV file with the anomaly detectors", cmdDetect},
		"serve":    {"run Vigil: store, API and detection (embedded defaults)", cmdServe},
		"token":    {"create, list or revoke API tokens", cmdToken},
		"corpus":   {"write a labelled anomaly corpus of CSV files, or import NAB/SKAB (import-nab, import-skab)", cmdCorpus},
		"eval":     {"measure detection quality on a labelled corpus", cmdEval},
		"simulate": {"send a simulated fleet's telemetry with labelled faults (HTTP or MQTT)", cmdSimulate},
		"demo":     {"run Vigil with a simulated fleet feeding it (try this first)", cmdDemo},
		"bench":    {"measure ingest throughput: vigil bench ingest", cmdBench},
		"train":    {"train detector models from stored history (stop vigil serve first)", cmdTrain},
		"backtest": {"replay history through a model version and report its events", cmdBacktest},
		"models":   {"list, promote, roll back or prune model versions", cmdModels},
	}
}

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func cmdVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintln(stdout, "vigil", version)
	return err
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vigil <command> [flags]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'vigil <command> -h' for the flags of a command.")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stderr)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands()[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "vigil: unknown command %q\n\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.run(ctx, os.Args[2:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "vigil %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
