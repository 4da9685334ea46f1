// Command tocsin-ferretdb runs an embedded FerretDB 1.x (MongoDB wire protocol on top of a
// pure-Go SQLite) for Tocsin's local tests and development. It exists because
// `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds a binary that panics
// at start (build/version/version.txt is not in the module zip), while the embeddable
// package works. scripts/infra.sh builds and starts it.
//
// Usage: tocsin-ferretdb -listen 127.0.0.1:27018 -data /abs/path/to/data
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on")
	dataDir := flag.String("data", "", "directory holding the SQLite databases (created if missing)")
	flag.Parse()

	if *dataDir == "" {
		log.Fatal("-data is required")
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		log.Fatal(err)
	}
	// The SQLite handler requires an existing directory and a URL ending in "/".
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	url := "file:" + strings.TrimSuffix(dir, "/") + "/"

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: url,
	})
	if err != nil {
		log.Fatal(err)
	}

	// Cancel Run on SIGTERM/SIGINT so the listener closes and SQLite is flushed cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	fmt.Fprintf(os.Stderr, "tocsin-ferretdb: listening on %s, data %s\n", *listen, url)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "tocsin-ferretdb: stopped")
}
