"""The `tocsin` command line: `serve`, `config check`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

from tocsin.config import ConfigError, TocsinConfig, load_config
from tocsin.service import ProcessState
from tocsin.settings import Settings

DEFAULT_PORTS = {"ingest": 8081, "triage": 8082, "escalation": 8083, "notifier": 8084}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tocsin", description="Alert triage and on-call paging.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run one service (Kafka + MongoDB)")
    serve.add_argument("service", choices=sorted(DEFAULT_PORTS))
    serve.add_argument("--config", type=Path, help="configuration file (YAML)")
    serve.add_argument("--host", default=os.environ.get("TOCSIN_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, help="default: 8081-8084 by service")

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a configuration file")
    check.add_argument("file", type=Path)
    return parser


def _load(path: Path | None) -> TocsinConfig:
    if path is None:
        return TocsinConfig()
    return load_config(path)


def _report(error: ConfigError) -> int:
    print(f"invalid configuration in {error.source}:", file=sys.stderr)
    for problem in error.problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "config":
        try:
            config = load_config(args.file)
        except ConfigError as error:
            return _report(error)
        print(
            f"{args.file}: ok ({len(config.services)} services, {len(config.integrations)} "
            f"integrations, {len(config.users)} users, "
            f"{len(config.escalation_policies)} escalation policies)"
        )
        return 0

    from tocsin.distributed import create_service_app

    settings = Settings()
    try:
        config = _load(args.config or settings.config)
    except ConfigError as error:
        return _report(error)
    state = ProcessState()
    app = create_service_app(args.service, settings, config, state)
    port = args.port or int(
        os.environ.get(f"TOCSIN_{args.service.upper()}_PORT", DEFAULT_PORTS[args.service])
    )
    # Our own access log prints route templates; uvicorn's would print tokens in URL paths.
    uvicorn.run(app, host=args.host, port=port, access_log=False, log_config=None)
    return 1 if state.failed else 0


if __name__ == "__main__":
    sys.exit(main())
