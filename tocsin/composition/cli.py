"""The `tocsin` command line: `up` (everything in one process), `serve` (one service on Kafka
and MongoDB), `admin init` (topics and indexes of a distributed deployment), `config check`,
`keys` and `users` (access_cli.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import metadata
from pathlib import Path

import uvicorn

from tocsin.composition import access_cli
from tocsin.composition.config import ConfigError, TocsinConfig, load_config
from tocsin.runtime import telemetry
from tocsin.runtime.service import ProcessState
from tocsin.runtime.settings import Settings

DEFAULT_PORTS = {"ingest": 8081, "triage": 8082, "escalation": 8083, "notifier": 8084}
EMBEDDED_PORT = 8080
# The services whose routes include the operator API (`/api/v1/...`).
OPERATOR_API_SERVICES = ("triage", "escalation")

log = logging.getLogger("tocsin")


UP_ENVIRONMENT = """\
environment:
  TOCSIN_ADMIN_TOKEN    the bootstrap admin key (Authorization: Bearer ...); unset,
                        the API under /api/v1 takes only personal API keys
                        (tocsin keys create), and with none refuses every request
  TOCSIN_CONFIG         configuration file when --config is not given
  TOCSIN_EMBEDDED_SYNCHRONOUS
                        NORMAL (default: survives a process crash) or FULL (fsync
                        every commit: survives an OS crash or power loss too)

signals:
  SIGHUP                reload the configuration file (a bad file is refused and
                        the running configuration stays); POST /api/v1/config/reload
                        with the admin key does the same
"""

SERVE_ENVIRONMENT = """\
environment:
  TOCSIN_KAFKA_BOOTSTRAP  Kafka brokers (default: 127.0.0.1:19092)
  TOCSIN_MONGO_URL        MongoDB URL (default: mongodb://127.0.0.1:27018/...)
  TOCSIN_ADMIN_TOKEN      the operator API key (triage, escalation); unset, the API
                          under /api/v1 refuses every request
  TOCSIN_CONFIG           configuration file when --config is not given
  TOCSIN_HOST, TOCSIN_<SERVICE>_PORT
                          defaults of --host and --port

signals:
  SIGHUP                  reload the configuration file (a bad file is refused and
                          the running configuration stays); POST /api/v1/config/reload
                          with the admin key does the same
"""


ADMIN_INIT_ENVIRONMENT = """\
environment:
  TOCSIN_KAFKA_BOOTSTRAP, TOCSIN_KAFKA_NAMESPACE
  TOCSIN_KAFKA_PARTITIONS, TOCSIN_KAFKA_REPLICATION_FACTOR,
  TOCSIN_KAFKA_MIN_INSYNC_REPLICAS, TOCSIN_KAFKA_RETENTION_HOURS
                          how the topics are created (4, 1, 1, 168)
  TOCSIN_KAFKA_SECURITY_PROTOCOL, TOCSIN_KAFKA_SASL_*, TOCSIN_KAFKA_SSL_CAFILE
                          how to connect to Kafka (TLS, SASL)
  TOCSIN_MONGO_URL, TOCSIN_MONGO_DATABASE
  TOCSIN_INIT_TIMEOUT_SECONDS
                          how long to wait for Kafka and MongoDB (default: 120)

Creates every missing topic (and its .dlq) and every missing index; existing ones are
left as they are. Exits 0 when both are in place, 1 when Kafka or MongoDB did not answer
in time.
"""


def _version() -> str:
    try:
        return metadata.version("tocsin")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed; run `make setup`)"


def _log_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=telemetry.LOG_FORMATS,
        default=telemetry.log_format_from_env(),
        help="text, or one JSON object per line (with trace_id); default: $TOCSIN_LOG_FORMAT, "
        "else text",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tocsin", description="Alert triage and on-call paging.")
    parser.add_argument("--version", action="version", version=f"tocsin {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser(
        "up",
        help="run everything in one process (embedded bus and store)",
        description="Run all four services in one process on one port, on an embedded bus and\n"
        "store (one SQLite file under --data-dir).",
        epilog=UP_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "--config",
        type=Path,
        help="configuration file (YAML); default: $TOCSIN_CONFIG, else none (Tocsin starts "
        "empty and accepts nothing)",
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=Path("tocsin-data"),
        help="where the SQLite file and the lock file live (default: %(default)s)",
    )
    up.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    up.add_argument(
        "--port", type=int, default=EMBEDDED_PORT, help="port to listen on (default: %(default)s)"
    )
    _log_format_argument(up)

    serve = commands.add_parser(
        "serve",
        help="run one service (Kafka + MongoDB)",
        description="Run one service in this process, on Apache Kafka and MongoDB.",
        epilog=SERVE_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("service", choices=sorted(DEFAULT_PORTS))
    serve.add_argument(
        "--config",
        type=Path,
        help="configuration file (YAML); default: $TOCSIN_CONFIG, else none",
    )
    serve.add_argument(
        "--host",
        default=os.environ.get("TOCSIN_HOST", "127.0.0.1"),
        help="address to listen on (default: %(default)s)",
    )
    ports = ", ".join(f"{name} {port}" for name, port in DEFAULT_PORTS.items())
    serve.add_argument("--port", type=int, help=f"port to listen on (default: {ports})")
    _log_format_argument(serve)

    admin = commands.add_parser("admin", help="deployment tools (Kafka + MongoDB)")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    admin_commands.add_parser(
        "init",
        help="create the Kafka topics and the MongoDB indexes (idempotent)",
        description="Create every contract topic and its .dlq, and every MongoDB index the\n"
        "services use; wait for Kafka and MongoDB to answer first.",
        epilog=ADMIN_INIT_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    access_cli.add_parsers(commands)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a configuration file")
    check.add_argument("file", type=Path)
    return parser


def _report(error: ConfigError) -> int:
    print(f"invalid configuration in {error.source}:", file=sys.stderr)
    for problem in error.problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1


def _check(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as error:
        return _report(error)
    print(
        f"{path}: ok ({len(config.services)} services, {len(config.integrations)} "
        f"integrations, {len(config.users)} users, "
        f"{len(config.escalation_policies)} escalation policies, "
        f"{len(config.schedules)} schedules)"
    )
    return 0


def _warn_if_operator_api_locked(settings: Settings) -> None:
    # Without the variable only personal keys open the API: before anyone made one, each call
    # answers 401 `invalid API key`, which says nothing about why. Say it once, at start, with
    # the ways out.
    if settings.admin_token is None:
        log.warning(
            "TOCSIN_ADMIN_TOKEN is not set: the operator API (/api/v1/...) takes only personal "
            "API keys (`tocsin keys create --user ID`, see its --help) and the console's "
            "password logins; without any it answers every request with 401 invalid API key. "
            "To bootstrap, restart with TOCSIN_ADMIN_TOKEN=<a long random secret> in the "
            "environment and send `Authorization: Bearer <that secret>`"
        )


def _run(app: object, host: str, port: int, state: ProcessState) -> int:
    # Our own access log prints route templates; uvicorn's would print tokens in URL paths.
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None)  # type: ignore[arg-type]
    return 1 if state.failed else 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from tocsin.composition.embedded import DataDirInUse, create_embedded_app

    config_path: Path | None = args.config or settings.config
    try:
        config = load_config(config_path) if config_path else TocsinConfig()
    except ConfigError as error:
        return _report(error)
    state = ProcessState()
    if settings.public_url is None:
        # Pages link to the incident in the API; without TOCSIN_PUBLIC_URL, where we listen.
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        settings = settings.model_copy(update={"public_url": f"http://{host}:{args.port}"})
    try:
        app = create_embedded_app(settings, config, args.data_dir, state, config_path)
    except DataDirInUse as error:
        print(f"tocsin: {error}", file=sys.stderr)
        return 1
    if config_path is None:
        log.warning(
            "no configuration: Tocsin accepts nothing and pages nobody until you add one; "
            "start with `tocsin up --config examples/tocsin.yaml` (see the README's "
            "configuration reference; `tocsin config check FILE` validates a file)"
        )
    _warn_if_operator_api_locked(settings)
    log.info(
        "data in %s; listening on http://%s:%d (web console: /ui)",
        args.data_dir.resolve(),
        args.host,
        args.port,
    )
    return _run(app, args.host, args.port, state)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from tocsin.composition.distributed import create_service_app

    config_path: Path | None = args.config or settings.config
    try:
        config = load_config(config_path) if config_path else TocsinConfig()
    except ConfigError as error:
        return _report(error)
    state = ProcessState()
    app = create_service_app(args.service, settings, config, state, config_path)
    if args.service in OPERATOR_API_SERVICES:
        _warn_if_operator_api_locked(settings)
    default_port = DEFAULT_PORTS[args.service]
    port = args.port or int(os.environ.get(f"TOCSIN_{args.service.upper()}_PORT", default_port))
    return _run(app, args.host, port, state)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "config":
        return _check(args.file)
    if args.command == "users":
        return access_cli.run_users(args)
    settings = Settings()
    telemetry.configure_logging(getattr(args, "log_format", None))
    if args.command == "admin":
        from tocsin.composition.admin import run_init

        return run_init(settings)
    if args.command == "keys":
        return access_cli.run_keys(args, settings)
    if args.command == "up":
        return _up(args, settings)
    return _serve(args, settings)


if __name__ == "__main__":
    sys.exit(main())
