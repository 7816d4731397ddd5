"""``python -m local``: serve the synthesized app on 127.0.0.1 until Ctrl-C (``make run``)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from jobs_cli.app_name import api_url_variable_for
from local.banner import try_lines
from local.server import OPENAPI_FILE, LocalRuntime
from local.template import TemplateNotFound, UnsupportedTemplate, find_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"), help="the synthesized cloud assembly")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--stack", help="the stack to serve (default: the only one in --cdk-out)")
    parser.add_argument(
        "--default-identity",
        default=os.environ.get("LOCAL_DEFAULT_IDENTITY") or None,
        help="accept unsigned requests as this IAM principal ARN (off: unsigned requests get 403, as in AWS)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)-13s %(message)s", datefmt="%H:%M:%S")

    try:
        stack = args.stack or find_stack(args.cdk_out)
    except TemplateNotFound as error:
        print(f"error: {error} (make run does)", file=sys.stderr)
        return 2
    if not (args.cdk_out / f"{stack}.template.json").exists():
        print(
            f"error: {args.cdk_out / stack}.template.json not found; synthesize first (make run does)", file=sys.stderr
        )
        return 2
    try:
        runtime = LocalRuntime(args.cdk_out, port=args.port, stack_name=stack, default_identity=args.default_identity)
        runtime.start()
    except UnsupportedTemplate as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            print(f"error: port {args.port} is already in use; free it or run with PORT=<other port>", file=sys.stderr)
            return 1
        raise

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    url = runtime.api_url
    push = ""
    if runtime.websocket_url:
        push = f"\n  Push:  {runtime.websocket_url}?job_id=<id> (WebSocket; jobs watch uses it)"
    if runtime.postgres is not None:
        postgres = runtime.postgres
        push += (
            f"\n  Database: PostgreSQL on localhost:{postgres.port} in place of RDS Proxy (TLS); with a psql built"
            " with TLS:"
            f"\n         psql 'host=localhost port={postgres.port} dbname={postgres.database} user={postgres.user}"
            f" sslmode=verify-full sslrootcert={postgres.ca_file}'"
        )
    for machine in runtime.state_machine_arns.values():
        push += (
            "\n  Workflow: one Step Functions execution per job (moto's interpreter); to see one:"
            f"\n         .venv/bin/python -m local.execution --endpoint {runtime.aws_endpoint} \\"
            f"\n             --state-machine {machine} <job_id>"
        )
    print(
        f"""
{runtime.template.app_name} is running locally (AWS emulated by moto; nothing leaves this machine).

  API:   {url}
  Docs:  {url.rsplit("/", 2)[0]}/openapi.json (OpenAPI 3){push}

{try_lines(url, api_url_variable_for(runtime.template.app_name), OPENAPI_FILE)}

Requests must be SigV4-signed (any credentials: signatures are not verified locally).
Press Ctrl-C to stop.
""",
        flush=True,
    )
    stop.wait()
    print("stopping…", flush=True)
    runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
