// Command tocsin-ferretdb runs an embedded FerretDB 1.x (MongoDB wire protocol on top of a
// pure-Go SQLite) for Tocsin's local tests and development. It exists because
// `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds a binary that panics
// at start (build/version/version.txt is not in the module zip), while the embeddable
// package works. scripts/infra.sh builds and starts it.
//
// FerretDB 1.24 executes an update as a read followed by a separate write, with no lock between
// them, so concurrent updates of one document lose writes (a compare-and-set on `version` lets
// several writers through; concurrent $addToSet calls drop elements). MongoDB makes every
// single-document operation atomic, and Tocsin relies on that. So this program puts a small
// wire-protocol front in front of FerretDB that never lets two writing commands on one
// collection run at once (a lock per collection, held from request to response), which gives
// the same single-document atomicity for tests. On PostgreSQL, writes to different collections
// run side by side (PostgreSQL's own locking keeps them apart); on SQLite, whose files take one
// writer at a time, and for commands that name no collection (dropDatabase...), one write runs
// alone. Commands that only read (find, getMore, aggregate, count, hello...) run side by side
// with each other and with writes, as on MongoDB (a read sees each document before or after a
// write, never half of it: PostgreSQL reads a snapshot). The front understands only message
// framing (a little-endian length prefix), the OP_MSG moreToCome flag, the name of the command
// (the first key of the body section) and its collection (that key's string value); anything
// else, legacy OP_QUERY handshakes included, runs alone.
//
// FerretDB keeps its data in SQLite files (-data DIR) or, with -postgresql-url, in PostgreSQL.
// FerretDB 1.24's SQLite handler reads a query from SQLite only by `_id` alone; any other filter
// (a compare-and-set on `{_id, version}`, a queue's `{state: pending}`) decodes and filters every
// document of the collection in Go. Its PostgreSQL handler hands equality conditions on
// top-level fields to PostgreSQL, so those cost what matches (scripts/infra.sh prefers it).
//
// Usage: tocsin-ferretdb -listen 127.0.0.1:27018 (-data /abs/path/to/data | -postgresql-url URL)
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on")
	dataDir := flag.String("data", "", "directory holding the SQLite databases (created if missing)")
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL to keep the data in, instead of SQLite")
	flag.Parse()

	config := ferretdb.Config{Handler: "postgresql", PostgreSQLURL: *postgresqlURL}
	where := "postgresql"
	concurrentWrites = *postgresqlURL != ""
	if *postgresqlURL == "" {
		if *dataDir == "" {
			log.Fatal("-data or -postgresql-url is required")
		}
		dir, err := filepath.Abs(*dataDir)
		if err != nil {
			log.Fatal(err)
		}
		// The SQLite handler requires an existing directory and a URL ending in "/".
		if err := os.MkdirAll(dir, 0o755); err != nil {
			log.Fatal(err)
		}
		config = ferretdb.Config{Handler: "sqlite", SQLiteURL: "file:" + strings.TrimSuffix(dir, "/") + "/"}
		where = config.SQLiteURL
	}

	internal, err := freeLoopbackAddr()
	if err != nil {
		log.Fatal(err)
	}
	front, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if path := os.Getenv("TOCSIN_FERRETDB_COMMAND_LOG"); path != "" {
		file, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		defer file.Close()
		commandLog = file
	}
	if addr := os.Getenv("TOCSIN_FERRETDB_PPROF"); addr != "" {
		// Go's profiler (`go tool pprof http://ADDR/debug/pprof/profile`), for benchmarks;
		// on a loopback address only.
		if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
			log.Fatalf("TOCSIN_FERRETDB_PPROF must be a loopback host:port, not %q", addr)
		}
		go func() { log.Print(http.ListenAndServe(addr, nil)) }() //nolint:gosec // loopback, opt-in
	}
	go serveSerialized(front, internal)

	config.Listener = ferretdb.ListenerConfig{TCP: internal}
	f, err := ferretdb.New(&config)
	if err != nil {
		log.Fatal(err)
	}

	// Cancel Run on SIGTERM/SIGINT so the listener closes and SQLite is flushed cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	fmt.Fprintf(os.Stderr, "tocsin-ferretdb: listening on %s, data %s\n", *listen, where)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
	front.Close()
	fmt.Fprintln(os.Stderr, "tocsin-ferretdb: stopped")
}

func freeLoopbackAddr() (string, error) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer probe.Close()
	return probe.Addr().String(), nil
}

// commandLock is held shared by reads and by writes that take their collection's lock, and
// alone by any other command.
var (
	commandLock      sync.RWMutex
	collectionLocks  sync.Map // collection name -> *sync.Mutex
	concurrentWrites bool     // writes to different collections may overlap (PostgreSQL)
)

// collectionWrites names the writing commands whose first element is the one collection they
// change.
var collectionWrites = map[string]bool{
	"insert": true, "update": true, "delete": true, "findAndModify": true, "createIndexes": true,
}

// readOnly names the commands that change nothing. Tocsin's aggregations have no $out or
// $merge stage, so an aggregate is a read here.
var readOnly = map[string]bool{
	"find": true, "getMore": true, "aggregate": true, "count": true, "distinct": true,
	"listIndexes": true, "listCollections": true, "listDatabases": true,
	"collStats": true, "dbStats": true, "serverStatus": true, "getParameter": true,
	"hello": true, "isMaster": true, "ismaster": true, "ping": true,
	"buildInfo": true, "buildinfo": true,
}

// commandLog, when TOCSIN_FERRETDB_COMMAND_LOG names a file, gets a line per command (for
// benchmarks: which commands the services send and what each costs): Unix time in
// milliseconds, the command, its collection, and microseconds from request to last response
// (waiting for the lock included), tab-separated.
var (
	commandLog   *os.File
	commandLogMu sync.Mutex
)

func logCommand(request []byte, started time.Time) {
	if commandLog == nil {
		return
	}
	line := fmt.Sprintf("%d\t%s\t%s\t%d\n", started.UnixMilli(), commandName(request),
		commandTarget(request), time.Since(started).Microseconds())
	commandLogMu.Lock()
	defer commandLogMu.Unlock()
	_, _ = commandLog.WriteString(line)
}

// commandTarget is the value of the body's first element when it is a string (the collection
// of find, update, insert...), else "".
func commandTarget(message []byte) string {
	name := commandName(message)
	if name == "" || message[25] != 0x02 {
		return ""
	}
	at := 26 + len(name) + 1 + 4
	if at > len(message) {
		return ""
	}
	size := int(binary.LittleEndian.Uint32(message[at-4 : at]))
	if size < 1 || at+size-1 > len(message) {
		return ""
	}
	return string(message[at : at+size-1])
}

// commandName is the first key of an OP_MSG's body section when that section comes first
// (drivers put it there), else "".
func commandName(message []byte) string {
	// header (16), flagBits (4), section kind (1), BSON length (4), element type (1), key.
	const keyAt = 16 + 4 + 1 + 4 + 1
	if len(message) <= keyAt ||
		binary.LittleEndian.Uint32(message[12:16]) != opMsg || message[20] != 0 {
		return ""
	}
	end := bytes.IndexByte(message[keyAt:], 0)
	if end < 0 {
		return ""
	}
	return string(message[keyAt : keyAt+end])
}

func serveSerialized(front net.Listener, upstream string) {
	for {
		client, err := front.Accept()
		if err != nil {
			return
		}
		go relay(client, upstream)
	}
}

const (
	opMsg      = 2013
	moreToCome = 1 << 1
)

// readMessage reads one wire-protocol message: int32 length (little-endian, including itself).
func readMessage(r io.Reader) ([]byte, error) {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	length := binary.LittleEndian.Uint32(header[:])
	if length < 16 || length > 64<<20 {
		return nil, fmt.Errorf("bad message length %d", length)
	}
	message := make([]byte, length)
	copy(message, header[:])
	if _, err := io.ReadFull(r, message[4:]); err != nil {
		return nil, err
	}
	return message, nil
}

func hasMoreToCome(message []byte) bool {
	return len(message) >= 20 &&
		binary.LittleEndian.Uint32(message[12:16]) == opMsg &&
		binary.LittleEndian.Uint32(message[16:20])&moreToCome != 0
}

func relay(client net.Conn, upstream string) {
	defer client.Close()
	server, err := net.Dial("tcp", upstream)
	if err != nil {
		log.Printf("tocsin-ferretdb: cannot reach FerretDB: %v", err)
		return
	}
	defer server.Close()
	for {
		request, err := readMessage(client)
		if err != nil {
			return
		}
		if err := exchange(client, server, request); err != nil {
			return
		}
	}
}

// acquire takes the locks a request needs and returns what releases them.
func acquire(request []byte) func() {
	name := commandName(request)
	if readOnly[name] {
		commandLock.RLock()
		return commandLock.RUnlock
	}
	if target := commandTarget(request); concurrentWrites && collectionWrites[name] && target != "" {
		lock, _ := collectionLocks.LoadOrStore(target, new(sync.Mutex))
		mu := lock.(*sync.Mutex)
		commandLock.RLock()
		mu.Lock()
		return func() {
			mu.Unlock()
			commandLock.RUnlock()
		}
	}
	commandLock.Lock()
	return commandLock.Unlock
}

// exchange forwards one request and its response(s) while holding the locks it needs.
func exchange(client, server net.Conn, request []byte) error {
	defer logCommand(request, time.Now())
	release := acquire(request)
	defer release()
	if _, err := server.Write(request); err != nil {
		return err
	}
	if hasMoreToCome(request) {
		return nil // the client asked for no reply
	}
	for {
		response, err := readMessage(server)
		if err != nil {
			return err
		}
		if _, err := client.Write(response); err != nil {
			return err
		}
		if !hasMoreToCome(response) {
			return nil
		}
	}
}
