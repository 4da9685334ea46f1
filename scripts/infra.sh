#!/usr/bin/env bash
# Local test infrastructure for Tocsin without Docker: a real Apache Kafka broker and a real
# MongoDB-wire-compatible server (FerretDB 1.x on PostgreSQL, or on SQLite), built from package
# registries (Maven Central, the Go module proxy, Debian) and run as plain background processes
# on loopback.
#
#   scripts/infra.sh up            start both (idempotent), wait until ready, write .cache/infra.env
#   scripts/infra.sh down [--wipe] stop both; --wipe also deletes their data (keeps jars/binaries)
#   scripts/infra.sh status        show state; exit 0 only if both answer
#   scripts/infra.sh kafka-up      start only Kafka (idempotent) and wait until ready
#   scripts/infra.sh kafka-down [--wipe]  stop only Kafka; --wipe also deletes its data
#   scripts/infra.sh ferretdb-up   start only FerretDB (and its PostgreSQL) and wait until ready
#   scripts/infra.sh ferretdb-down stop only FerretDB (its PostgreSQL keeps running)
#   scripts/infra.sh postgres-down stop only the PostgreSQL behind FerretDB (FerretDB keeps
#                                  running and answers errors until `ferretdb-up` starts it again)
#
# Then: `source .cache/infra.env` exports TOCSIN_KAFKA_BOOTSTRAP and TOCSIN_MONGO_URL.
#
# Environment:
#   TOCSIN_KAFKA_PORT (19092), TOCSIN_KAFKA_CONTROLLER_PORT (19093), TOCSIN_FERRETDB_PORT (27018)
#   TOCSIN_FERRETDB_BACKEND  postgresql or sqlite (default: postgresql when Debian's PostgreSQL
#                         is installed, or installable with apt-get as root; else sqlite).
#                         FerretDB's SQLite handler filters every query but `{_id: x}` document
#                         by document in Go, so a compare-and-set or a queue poll costs the whole
#                         collection; PostgreSQL evaluates equality filters itself (bench numbers
#                         in README, "The distributed pipeline").
#   TOCSIN_POSTGRES_PORT  (27432) PostgreSQL behind FerretDB, loopback only, trust auth
#   TOCSIN_INFRA_TIMEOUT  seconds `up` waits for readiness (90)
#   TOCSIN_KAFKA_HEAP     the broker's maximum heap (512m); kept data with many thousands of
#                         partitions (benchmark and test topics) can need more to start at all
#   TOCSIN_INFRA_FRESH=1  `up` stops anything running and wipes Kafka/FerretDB data first
#                         (`kafka-up`: Kafka only)
#   TOCSIN_INFRA_DIR      state directory: configs, data, logs, pid files, infra.env (<repo>/.cache).
#                         With another directory and other ports, a second, private set of servers
#                         runs beside the shared one (a test that stops Kafka uses its own).
#                         Jars and binaries always stay shared under <repo>/.cache.
#   JAVA                  java binary (java on PATH; Java 17+)
#
# Data policy: data is KEPT across down/up (fast restarts, like a developer's servers). Tests
# must isolate themselves (unique topic/group/database names). Use TOCSIN_INFRA_FRESH=1 or
# `down --wipe` for a clean slate.
#
# Everything lives under <repo>/.cache/ (git-ignored), or the state under $TOCSIN_INFRA_DIR:
#   kafka/libs/       broker classpath from tools/kafka/pom.xml (fetched once per pom content; shared)
#   kafka/config/     generated server.properties and log4j2.properties
#   kafka/data/       KRaft metadata + topic logs (formatted once with a random cluster id)
#   kafka/logs/       server.log (log4j2, WARN) and kafka.out (stdout/stderr)
#   kafka/kafka.pid
#   bin/tocsin-ferretdb  built from tools/ferretdb (rebuilt when its sources are newer; shared)
#   ferretdb/data/    SQLite files; ferretdb/ferretdb.log; ferretdb/ferretdb.pid
#   postgresql/data/  the PostgreSQL cluster (owned by the `postgres` user when run as root);
#                     postgresql/postgresql.log; its socket in postgresql/
#   infra.env
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="$ROOT/.cache"
CACHE="${TOCSIN_INFRA_DIR:-$SHARED}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"

KAFKA_PORT="${TOCSIN_KAFKA_PORT:-19092}"
KAFKA_CPORT="${TOCSIN_KAFKA_CONTROLLER_PORT:-19093}"
FERRET_PORT="${TOCSIN_FERRETDB_PORT:-27018}"
PG_PORT="${TOCSIN_POSTGRES_PORT:-27432}"
TIMEOUT="${TOCSIN_INFRA_TIMEOUT:-90}"
KAFKA_HEAP="${TOCSIN_KAFKA_HEAP:-512m}"
JAVA="${JAVA:-java}"
HOST=127.0.0.1

KDIR="$CACHE/kafka"
KLIBS="$SHARED/kafka/libs"
KCONF="$KDIR/config"
KDATA="$KDIR/data"
KLOGS="$KDIR/logs"
KPID="$KDIR/kafka.pid"
KPOM="$ROOT/tools/kafka/pom.xml"

FDIR="$CACHE/ferretdb"
FDATA="$FDIR/data"
FPID="$FDIR/ferretdb.pid"
FLOG="$FDIR/ferretdb.log"
FSRC="$ROOT/tools/ferretdb"
FBIN="$SHARED/bin/tocsin-ferretdb"

PGDIR="$CACHE/postgresql"
PGDATA_DIR="$PGDIR/data"
PGLOG="$PGDIR/postgresql.log"

ENVFILE="$CACHE/infra.env"

log() { echo "infra: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH ($2)"; }

# ---------------------------------------------------------------------------------------------
# Probes. python3 with raw sockets, so no client library is needed. Exit 0 = ready.
#   kafka: Metadata v4 (Kafka 4.x removed v0-v3) must list >=1 broker and a controller id, which
#          only happens once the KRaft broker has registered and caught up with the metadata log.
#   mongo: OP_MSG {ping: 1} must answer ok: 1.
#   port:  TCP connect only (used to detect a foreign process holding our port).
# ---------------------------------------------------------------------------------------------
probe() {
  python3 - "$@" <<'PY'
import socket, struct, sys

kind, port = sys.argv[1], int(sys.argv[2])

def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf

try:
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.settimeout(3)
    if kind == "port":
        sys.exit(0)
    if kind == "kafka":
        client = b"tocsin-infra"
        # header v1: api_key=3 (Metadata), api_version=4, correlation_id, client_id
        hdr = struct.pack(">hhih", 3, 4, 7, len(client)) + client
        body = struct.pack(">i?", -1, False)  # all topics, no auto-creation
        req = hdr + body
        s.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        data = recv_exact(s, size)
        corr, _throttle, nbrokers = struct.unpack(">iii", data[:12])
        off = 12
        for _ in range(nbrokers):
            off += 4                                        # node_id
            hl = struct.unpack(">h", data[off:off + 2])[0]; off += 2 + hl   # host
            off += 4                                        # port
            rl = struct.unpack(">h", data[off:off + 2])[0]; off += 2 + max(rl, 0)  # rack
        cl = struct.unpack(">h", data[off:off + 2])[0]; off += 2 + max(cl, 0)      # cluster_id
        controller = struct.unpack(">i", data[off:off + 4])[0]
        sys.exit(0 if corr == 7 and nbrokers >= 1 and controller >= 0 else 1)
    if kind == "mongo":
        def cstr(x): return x.encode() + b"\0"
        # BSON {ping: int32 1, $db: "admin"}
        elems = b"\x10" + cstr("ping") + struct.pack("<i", 1)
        elems += b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")
        doc = struct.pack("<i", len(elems) + 5) + elems + b"\0"
        payload = struct.pack("<I", 0) + b"\0" + doc      # flagBits, section kind 0, body
        s.sendall(struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload)  # OP_MSG
        size = struct.unpack("<i", recv_exact(s, 4))[0]
        data = recv_exact(s, size - 4)
        ok = b"\x01ok\x00" + struct.pack("<d", 1.0)    # double ok: 1.0
        ok_int = b"\x10ok\x00" + struct.pack("<i", 1)
        sys.exit(0 if (ok in data or ok_int in data) else 1)
except (OSError, EOFError, struct.error):
    sys.exit(1)
sys.exit(2)
PY
}

# pid_alive PIDFILE PATTERN: the pid file names a live process whose command line contains
# PATTERN (guards against a stale pid that the OS has reused for something else).
pid_alive() {
  local pidfile="$1" pattern="$2" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

# stop_proc NAME PIDFILE PATTERN: SIGTERM, wait up to 15 s for a clean shutdown, then SIGKILL.
stop_proc() {
  local name="$1" pidfile="$2" pattern="$3" pid i
  if pid_alive "$pidfile" "$pattern"; then
    pid="$(cat "$pidfile")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 15 s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  fi
  rm -f "$pidfile"
}

# start_bg PIDFILE LOGFILE CMD...: run CMD detached (own session, so it outlives this shell and
# the caller's Ctrl-C), stdin closed, output appended to LOGFILE.
start_bg() {
  local pidfile="$1" logfile="$2"
  shift 2
  # Non-interactive bash has no job control, so the child is not a group leader and setsid
  # execs in place: $! is the server's own pid.
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

# ---------------------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------------------
kafka_fetch() {
  # The marker records a hash of the pom, so a version bump in tools/kafka/pom.xml refetches,
  # and an interrupted fetch (no marker) is redone from scratch.
  local want have=""
  want="$(sha256sum "$KPOM" | cut -d' ' -f1)"
  [[ -f "$KLIBS/.complete" ]] && have="$(cat "$KLIBS/.complete")"
  if [[ "$want" == "$have" ]] && compgen -G "$KLIBS/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  need mvn "Maven, to fetch Kafka from Maven Central"
  log "fetching Kafka jars from Maven Central into $KLIBS"
  rm -rf "$KLIBS"
  mvn -q -B -Dstyle.color=never -f "$KPOM" dependency:copy-dependencies \
    -DoutputDirectory="$KLIBS" -DincludeScope=runtime >&2
  compgen -G "$KLIBS/kafka_2.13-*.jar" >/dev/null || die "Kafka jars missing after mvn"
  echo "$want" >"$KLIBS/.complete"
}

kafka_config() {
  mkdir -p "$KCONF" "$KDATA" "$KLOGS"
  # Rewritten on every start so port overrides take effect; data in $KDATA is unaffected.
  cat >"$KCONF/server.properties" <<EOF
# Generated by scripts/infra.sh -- single-node KRaft (combined broker+controller) for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CPORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CPORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KDATA
num.partitions=4
# Tocsin creates its topics itself (replication, min ISR from settings); a topic created by
# accident with broker defaults would be a bug, so the broker refuses to auto-create.
auto.create.topics.enable=false
# One broker: internal topics must not wait for replicas that will never exist.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join groups constantly; the default 3 s delay would slow every first join.
group.initial.rebalance.delay.ms=0
EOF
  cat >"$KCONF/log4j2.properties" <<EOF
# Generated by scripts/infra.sh -- WARN and above to a file; stdout stays quiet.
status = warn
# Kafka stops log4j itself; the JVM hook would only warn that it came too late.
shutdownHook = disable
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $KLOGS/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
EOF
}

# kafka_cmd ARGS...: the java command line on the broker classpath (used for the broker itself
# and for StorageTool), stored in the global array KCMD.
kafka_cmd() {
  KCMD=("$JAVA" -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$KCONF/log4j2.properties" -cp "$KLIBS/*" "$@")
}

kafka_format() {
  # Format once: meta.properties in the log dir means the storage already has a cluster id.
  [[ -f "$KDATA/meta.properties" ]] && return 0
  local cid
  # A Kafka cluster id is a random UUID in unpadded URL-safe base64 (what
  # `StorageTool random-uuid` prints), made here without a second JVM start.
  cid="$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
  log "formatting Kafka storage (cluster id $cid)"
  kafka_cmd kafka.tools.StorageTool format --ignore-formatted -t "$cid" \
    -c "$KCONF/server.properties"
  "${KCMD[@]}" >>"$KLOGS/kafka.out" 2>&1 \
    || { tail -n 30 "$KLOGS/kafka.out" >&2; die "Kafka storage format failed"; }
}

kafka_start() {
  if pid_alive "$KPID" kafka.Kafka; then
    return 0
  fi
  rm -f "$KPID"
  need "$JAVA" "Java 17+"
  kafka_fetch
  kafka_config
  kafka_format
  log "starting Kafka on $HOST:$KAFKA_PORT (controller $KAFKA_CPORT)"
  echo "--- $(date -Is) start" >>"$KLOGS/kafka.out"
  kafka_cmd kafka.Kafka "$KCONF/server.properties"
  start_bg "$KPID" "$KLOGS/kafka.out" "${KCMD[@]}"
}

# ---------------------------------------------------------------------------------------------
# FerretDB
# ---------------------------------------------------------------------------------------------
ferret_build() {
  if [[ -x "$FBIN" && ! "$FSRC/main.go" -nt "$FBIN" && ! "$FSRC/go.mod" -nt "$FBIN" \
        && ! "$FSRC/go.sum" -nt "$FBIN" ]]; then
    return 0
  fi
  need go "Go, to build FerretDB from the Go module proxy"
  log "building $FBIN (first build takes about a minute)"
  mkdir -p "$(dirname "$FBIN")"
  # Pure-Go SQLite: no C toolchain needed. -buildvcs=false: no dependence on the git checkout.
  (cd "$FSRC" && CGO_ENABLED=0 go build -buildvcs=false -o "$FBIN.tmp" .) \
    || die "go build of tools/ferretdb failed"
  mv -f "$FBIN.tmp" "$FBIN"
}

ferret_start() {
  if pid_alive "$FPID" tocsin-ferretdb; then
    return 0
  fi
  rm -f "$FPID"
  ferret_build
  mkdir -p "$FDATA"
  echo "--- $(date -Is) start" >>"$FLOG"
  if [[ "$BACKEND" == postgresql ]]; then
    log "starting FerretDB on $HOST:$FERRET_PORT (PostgreSQL on $HOST:$PG_PORT)"
    start_bg "$FPID" "$FLOG" "$FBIN" -listen "$HOST:$FERRET_PORT" \
      -postgresql-url "postgres://postgres@$HOST:$PG_PORT/ferretdb"
  else
    log "starting FerretDB on $HOST:$FERRET_PORT (SQLite)"
    start_bg "$FPID" "$FLOG" "$FBIN" -listen "$HOST:$FERRET_PORT" -data "$FDATA"
  fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL (Debian's package) behind FerretDB: a private cluster under $PGDIR, loopback only,
# trust auth, no fsync (test data: a crash of the machine may lose it; a kill of any process
# does not). Run as the `postgres` user when this script runs as root (PostgreSQL refuses root).
# ---------------------------------------------------------------------------------------------
pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/pg_ctl" ]] && { echo "$dir"; return 0; }
  done
  return 1
}

pg_install() {
  pg_bin >/dev/null && return 0
  [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1 || return 1
  log "installing PostgreSQL from Debian (apt-get install postgresql)"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }; } \
    || return 1
  pg_bin >/dev/null
}

# as_pg CMD...: run CMD as the cluster's owner.
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_alive() {
  local bin
  bin="$(pg_bin)" || return 1
  [[ -f "$PGDATA_DIR/postmaster.pid" ]] || return 1
  as_pg "$bin/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

pg_start() {
  local bin
  bin="$(pg_bin)" || die "PostgreSQL not installed"
  mkdir -p "$PGDIR"
  if [[ "$(id -u)" == 0 ]]; then chown postgres "$PGDIR"; fi
  if ! pg_alive && [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
    log "creating the PostgreSQL cluster in $PGDATA_DIR"
    rm -rf "$PGDATA_DIR"
    as_pg "$bin/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --no-locale \
      >"$PGDIR/initdb.log" 2>&1 || { tail -n 20 "$PGDIR/initdb.log" >&2; die "initdb failed"; }
  fi
  # Rewritten on every start so port overrides take effect (included last: it wins); a running
  # cluster reloads it (its port stays until a restart).
  as_pg tee "$PGDATA_DIR/tocsin.conf" >/dev/null <<PGCONF
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PGDIR'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
max_connections = 200
# FerretDB names the field of an equality filter by a parameter of a prepared statement: only a
# custom plan sees it and can use the GIN indexes of scripts/ferretdb-indexes.sql.
plan_cache_mode = force_custom_plan
PGCONF
  if ! grep -q "^include_if_exists = 'tocsin.conf'" "$PGDATA_DIR/postgresql.conf"; then
    echo "include_if_exists = 'tocsin.conf'" | as_pg tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
  fi
  if pg_alive; then
    as_pg "$bin/pg_ctl" -D "$PGDATA_DIR" reload >/dev/null
  else
    log "starting PostgreSQL on $HOST:$PG_PORT"
    as_pg "$bin/pg_ctl" -D "$PGDATA_DIR" -l "$PGLOG" -w -t "$TIMEOUT" start >/dev/null \
      || { tail -n 20 "$PGLOG" >&2; die "PostgreSQL did not start"; }
  fi
  if ! as_pg "$bin/psql" -h "$HOST" -p "$PG_PORT" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'" | grep -q 1; then
    as_pg "$bin/createdb" -h "$HOST" -p "$PG_PORT" -U postgres ferretdb
  fi
  as_pg "$bin/psql" -h "$HOST" -p "$PG_PORT" -U postgres -d ferretdb -q -v ON_ERROR_STOP=1 \
    -c 'SET client_min_messages = warning' -f - <"$ROOT/scripts/ferretdb-indexes.sql" >/dev/null \
    || die "could not install the GIN indexes for FerretDB (scripts/ferretdb-indexes.sql)"
}

pg_stop() {
  local bin
  bin="$(pg_bin)" || return 0
  if pg_alive; then
    log "stopping PostgreSQL"
    as_pg "$bin/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

# The backend: TOCSIN_FERRETDB_BACKEND, else PostgreSQL when it is (or can be) installed.
choose_backend() {
  BACKEND="${TOCSIN_FERRETDB_BACKEND:-}"
  case "$BACKEND" in
    postgresql) pg_install || die "PostgreSQL is not installed and cannot be (apt-get as root)" ;;
    sqlite) ;;
    "")
      if pg_install; then
        BACKEND=postgresql
      else
        log "PostgreSQL not available: FerretDB on SQLite (slow on scans, see README)"
        BACKEND=sqlite
      fi
      ;;
    *) die "TOCSIN_FERRETDB_BACKEND must be postgresql or sqlite" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

# wait_ready NAME KIND PORT PIDFILE PATTERN LOGFILES...: poll until the probe passes; fail fast
# if the process dies, and show the log tails on failure.
wait_ready() {
  local name="$1" kind="$2" port="$3" pidfile="$4" pattern="$5"
  shift 5
  local deadline=$((SECONDS + TIMEOUT)) f
  until probe "$kind" "$port"; do
    if ! pid_alive "$pidfile" "$pattern" || ((SECONDS >= deadline)); then
      if pid_alive "$pidfile" "$pattern"; then
        log "$name not ready after ${TIMEOUT}s"
      else
        log "$name process exited"
      fi
      for f in "$@"; do
        [[ -f "$f" ]] && { log "--- tail of $f"; tail -n 40 "$f" >&2; }
      done
      return 1
    fi
    sleep 0.3
  done
}

write_env() {
  # The Mongo URL is single-quoted: unquoted, its '&' would background the rest of the line
  # and its '?' could glob when the file is sourced.
  mkdir -p "$CACHE"
  cat >"$ENVFILE.tmp" <<EOF
export TOCSIN_KAFKA_BOOTSTRAP=$HOST:$KAFKA_PORT
export TOCSIN_MONGO_URL='mongodb://$HOST:$FERRET_PORT/?directConnection=true&retryWrites=false'
EOF
  mv -f "$ENVFILE.tmp" "$ENVFILE"
}

wipe_data() {
  log "wiping Kafka and FerretDB data"
  rm -rf "$KDATA" "$FDATA" "$PGDATA_DIR"
}

cmd_up() {
  need python3 "used for readiness probes"
  mkdir -p "$CACHE" "$KLOGS" "$FDIR"
  if [[ "${TOCSIN_INFRA_FRESH:-0}" == 1 ]]; then
    stop_proc Kafka "$KPID" kafka.Kafka
    stop_proc FerretDB "$FPID" tocsin-ferretdb
    pg_stop
    wipe_data
  fi
  # Refuse before starting anything if a port we need is held by someone else (another test
  # run, a developer's own server): our server would die at bind and the probe would be fooled.
  if ! pid_alive "$KPID" kafka.Kafka; then
    if probe port "$KAFKA_PORT" || probe port "$KAFKA_CPORT"; then
      die "port $KAFKA_PORT or $KAFKA_CPORT is taken by another process (set TOCSIN_KAFKA_PORT / TOCSIN_KAFKA_CONTROLLER_PORT)"
    fi
  fi
  if ! pid_alive "$FPID" tocsin-ferretdb && probe port "$FERRET_PORT"; then
    die "port $FERRET_PORT is taken by another process (set TOCSIN_FERRETDB_PORT)"
  fi
  # Start both first so the JVM boots while FerretDB (re)builds/starts, then wait for both.
  kafka_start
  # A running FerretDB keeps its backend; a new one gets PostgreSQL when it can.
  if ! pid_alive "$FPID" tocsin-ferretdb; then
    choose_backend
    if [[ "$BACKEND" == postgresql ]]; then pg_start; fi
  fi
  ferret_start
  local rc=0
  wait_ready Kafka kafka "$KAFKA_PORT" "$KPID" kafka.Kafka "$KLOGS/kafka.out" "$KLOGS/server.log" || rc=1
  wait_ready FerretDB mongo "$FERRET_PORT" "$FPID" tocsin-ferretdb "$FLOG" || rc=1
  ((rc == 0)) || die "infrastructure did not come up (see logs above; 'scripts/infra.sh down' to clean up)"
  write_env
  log "ready: Kafka $HOST:$KAFKA_PORT, FerretDB $HOST:$FERRET_PORT (source $ENVFILE)"
}

cmd_down() {
  local wipe=0
  case "${1:-}" in
    "") ;;
    --wipe) wipe=1 ;;
    *) die "usage: $0 down [--wipe]" ;;
  esac
  stop_proc Kafka "$KPID" kafka.Kafka
  stop_proc FerretDB "$FPID" tocsin-ferretdb
  pg_stop
  ((wipe == 0)) || wipe_data
  return 0
}

cmd_kafka_up() {
  need python3 "used for readiness probes"
  mkdir -p "$KLOGS"
  if [[ "${TOCSIN_INFRA_FRESH:-0}" == 1 ]]; then
    stop_proc Kafka "$KPID" kafka.Kafka
    rm -rf "$KDATA"
  fi
  if ! pid_alive "$KPID" kafka.Kafka; then
    if probe port "$KAFKA_PORT" || probe port "$KAFKA_CPORT"; then
      die "port $KAFKA_PORT or $KAFKA_CPORT is taken by another process (set TOCSIN_KAFKA_PORT / TOCSIN_KAFKA_CONTROLLER_PORT)"
    fi
  fi
  kafka_start
  wait_ready Kafka kafka "$KAFKA_PORT" "$KPID" kafka.Kafka "$KLOGS/kafka.out" "$KLOGS/server.log" \
    || die "Kafka did not come up (see logs above)"
  log "ready: Kafka $HOST:$KAFKA_PORT"
}

cmd_kafka_down() {
  case "${1:-}" in
    "") stop_proc Kafka "$KPID" kafka.Kafka ;;
    --wipe) stop_proc Kafka "$KPID" kafka.Kafka; rm -rf "$KDATA" ;;
    *) die "usage: $0 kafka-down [--wipe]" ;;
  esac
}

cmd_ferretdb_up() {
  need python3 "used for readiness probes"
  mkdir -p "$FDIR"
  if ! pid_alive "$FPID" tocsin-ferretdb && probe port "$FERRET_PORT"; then
    die "port $FERRET_PORT is taken by another process (set TOCSIN_FERRETDB_PORT)"
  fi
  if pid_alive "$FPID" tocsin-ferretdb; then
    # Running on PostgreSQL (its cluster exists): start PostgreSQL again if it was stopped.
    if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then pg_start; fi
  else
    choose_backend
    if [[ "$BACKEND" == postgresql ]]; then pg_start; fi
    ferret_start
  fi
  wait_ready FerretDB mongo "$FERRET_PORT" "$FPID" tocsin-ferretdb "$FLOG" \
    || die "FerretDB did not come up (see logs above)"
  log "ready: FerretDB $HOST:$FERRET_PORT"
}

cmd_status() {
  local rc=0 pid
  if pid_alive "$KPID" kafka.Kafka; then
    pid="$(cat "$KPID")"
    if probe kafka "$KAFKA_PORT"; then
      echo "kafka:    ready    pid $pid  $HOST:$KAFKA_PORT  rss $(($(ps -o rss= -p "$pid") / 1024)) MiB"
    else
      echo "kafka:    starting pid $pid  $HOST:$KAFKA_PORT"; rc=1
    fi
  else
    echo "kafka:    stopped"; rc=1
  fi
  if pid_alive "$FPID" tocsin-ferretdb; then
    pid="$(cat "$FPID")"
    if probe mongo "$FERRET_PORT"; then
      echo "ferretdb: ready    pid $pid  $HOST:$FERRET_PORT  rss $(($(ps -o rss= -p "$pid") / 1024)) MiB"
    else
      echo "ferretdb: starting pid $pid  $HOST:$FERRET_PORT"; rc=1
    fi
  else
    echo "ferretdb: stopped"; rc=1
  fi
  return "$rc"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  kafka-up) shift; cmd_kafka_up "$@" ;;
  kafka-down) shift; cmd_kafka_down "$@" ;;
  ferretdb-up) shift; cmd_ferretdb_up "$@" ;;
  ferretdb-down) shift; stop_proc FerretDB "$FPID" tocsin-ferretdb ;;
  postgres-down) shift; pg_stop ;;
  *) echo "usage: $0 {up|down [--wipe]|status|kafka-up|kafka-down [--wipe]|ferretdb-up|ferretdb-down|postgres-down}" >&2; exit 2 ;;
esac
