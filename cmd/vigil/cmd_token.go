package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/vigil-iot/vigil/internal/app"
	"github.com/vigil-iot/vigil/internal/appdb"
)

func cmdToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: vigil token create --name NAME [--role admin|write|read] [--device-prefix P] | list | revoke ID  [store flags]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	var name, role, prefix string
	extra := func(fs *flag.FlagSet) {
		if sub == "create" {
			fs.StringVar(&name, "name", "", "a name that says who uses the token (required)")
			fs.StringVar(&role, "role", "write", "admin, write or read")
			fs.StringVar(&prefix, "device-prefix", "", "limit a write token to devices whose ID starts with this")
		}
	}
	var id string
	if sub == "revoke" {
		if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
			return errors.New("revoke needs the token ID first: vigil token revoke ID (see vigil token list)")
		}
		id, args = args[0], args[1:]
	}
	cfg, err := loadConfig("token "+sub, args, stderr, extra)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, app.Options{AppDBOnly: true, Logger: newLogger(stderr, "warn")})
	if err != nil {
		return err
	}
	defer a.Close()
	switch sub {
	case "create":
		if name == "" {
			return errors.New("--name is required (e.g. --name telegraf-site-a)")
		}
		r := appdb.Role(role)
		if r != appdb.RoleAdmin && r != appdb.RoleWrite && r != appdb.RoleRead {
			return fmt.Errorf("--role %q: want admin, write or read", role)
		}
		tok, secret, err := a.CreateToken(ctx, name, r, prefix)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created token %s (%s, role %s); the secret below is shown once:\n", tok.ID, tok.Name, tok.Role)
		fmt.Fprintln(stdout, secret)
	case "list":
		toks, err := a.Tokens(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tDEVICE PREFIX\tCREATED\tLAST USED\tREVOKED")
		for _, t := range toks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.DevicePrefix, when(t.CreatedAt), when(t.LastUsedAt), when(t.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		tok, err := a.RevokeToken(ctx, id)
		if err != nil {
			if errors.Is(err, appdb.ErrNotFound) {
				return fmt.Errorf("no token with ID %q (see vigil token list)", id)
			}
			return err
		}
		fmt.Fprintf(stdout, "revoked %s (%s) at %s\n", tok.ID, tok.Name, when(tok.RevokedAt))
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown token command %q", sub)
	}
	return a.Close()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
