"""Cold start of each handler next to the floor it cannot go below, measured in one run.

Runs every function of the synthesized app in new local sandboxes (the local runtime's
execution environments, with each function's environment as ``make run`` gives it; tracing
needs no SDK, so nothing differs from a deployed function's), and the two floors below,
interleaved run by run so that a busy machine slows all of them alike. Prints, per module, the median over ``--runs``
fresh processes of

* **init**: the module's import and module-level initialisation, as measured inside the
  process: what Lambda reports as ``Init Duration`` minus the runtime's own start;
* **x floor**: init over the init of its floor (API functions: the API floor; the others:
  the worker floor);
* **process**: from spawning the process to the handler being ready (adds interpreter start);

then the size of the code asset (the ``lambdas/`` folder every function deploys; the
Powertools layer is shared and not counted), as files and as the zip Lambda receives.

The floors are what any function of this kind must load, written as plainly as possible:

* API floor: ``import boto3``, one DynamoDB client, Powertools Logger + Metrics +
  ``APIGatewayRestResolver`` + the idempotency utility with that client;
* worker floor: ``import boto3``, one DynamoDB client, Logger + Metrics.

    python -m bench.cold_start [--runs 9] [--dispatch durable]

``--dispatch`` measures that variant's functions (``durable``: the durable worker, which
also loads the durable SDK and its own boto3 from its layer).
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from local.sandbox import Sandbox

# Sandboxes are spawned processes, and spawning re-imports this module in each of them: heavy
# imports (boto3, moto) stay inside main() so the handler's own imports are measured cold.

API_FLOOR = """
import os

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function

client = boto3.client("dynamodb")
logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
config = IdempotencyConfig(event_key_jmespath="key")
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE_NAME"], boto3_client=client)


@idempotent_function(data_keyword_argument="request", config=config, persistence_store=persistence)
def once(request):
    return request


def handler(event, context):
    return app.resolve(event, context)
"""

WORKER_FLOOR = """
import boto3
from aws_lambda_powertools import Logger, Metrics

client = boto3.client("dynamodb")
logger = Logger()
metrics = Metrics()


def handler(event, context):
    return {}
"""

API_HANDLERS = {"jobs.handlers.submit", "jobs.handlers.status", "jobs.handlers.cancel"}


@dataclass
class Subject:
    label: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    floor: str | None  # the label of its floor; None for a floor
    inits: list[float] = field(default_factory=list)
    processes: list[float] = field(default_factory=list)

    def measure(self) -> None:
        started = time.monotonic()
        identity = {"name": self.label, "arn": f"arn:aws:lambda:::function:{self.label}", "memory_mb": 512}
        sandbox = Sandbox(self.code_dir, self.handler, self.environment, identity)
        try:
            if not sandbox.wait_until_ready() or sandbox.init_ms is None:
                raise SystemExit(f"{self.label} did not initialise")
            self.processes.append((time.monotonic() - started) * 1000)
            self.inits.append(sandbox.init_ms)
        finally:
            sandbox.stop()

    @property
    def init(self) -> float:
        return statistics.median(self.inits)


def asset_sizes(code_dir: Path) -> tuple[int, int]:
    """(bytes of files, bytes of the deflated zip) of a code asset, as CDK packages it."""
    files = sorted(f for f in code_dir.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.write(file, file.relative_to(code_dir).as_posix())
    return sum(f.stat().st_size for f in files), len(buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--dispatch", choices=("lambda", "sqs", "stepfunctions", "durable"), default="lambda")
    args = parser.parse_args(argv)
    from local.server import LocalRuntime  # noqa: PLC0415  see the note on imports
    from local.synth import ROOT, synthesize  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as out:
        floors_dir = Path(out) / "floors"
        floors_dir.mkdir()
        (floors_dir / "api_floor.py").write_text(API_FLOOR)
        (floors_dir / "worker_floor.py").write_text(WORKER_FLOOR)
        # The runtime resolves each function's environment (table names, endpoints) as make run does.
        cdk_out = synthesize(ROOT / "app.py", Path(out) / "cdk.out", {"dispatch": args.dispatch})
        runtime = LocalRuntime(cdk_out, port=0).start()
        try:
            assert runtime.lambdas is not None
            functions = list(runtime.lambdas.functions.values())
            subjects: list[Subject] = []
            for function in functions:
                module = function.spec.handler.rsplit(".", 1)[0]
                floor = "API floor" if module in API_HANDLERS else "worker floor"
                environment = function.environment
                subjects.append(Subject(module, function.spec.code_dir, function.spec.handler, environment, floor))
            api_environment = next(s.environment for s in subjects if s.floor == "API floor")
            worker_environment = next(s.environment for s in subjects if s.floor == "worker floor")
            floors = {
                "API floor": Subject("API floor", floors_dir, "api_floor.handler", api_environment, None),
                "worker floor": Subject("worker floor", floors_dir, "worker_floor.handler", worker_environment, None),
            }
            everything = [*floors.values(), *subjects]
            for _ in range(args.runs):
                for subject in random.sample(everything, len(everything)):
                    subject.measure()
            print(f"{'module':<30} {'init p50':>9} {'x floor':>8} {'process p50':>12}")
            for subject in everything:
                ratio = subject.init / floors[subject.floor].init if subject.floor else 1.0
                print(
                    f"{subject.label:<30} {subject.init:6.0f} ms {ratio:7.2f}x"
                    f" {statistics.median(subject.processes):9.0f} ms"
                )
            files, zipped = asset_sizes(functions[0].spec.code_dir)
            print(f"code asset: {files / 1024:.0f} KB of files, {zipped / 1024:.0f} KB zipped (what Lambda receives)")
        finally:
            runtime.stop()


if __name__ == "__main__":
    main()
