"""Cold start of each handler: a fresh process importing and initialising the handler module.

Runs every function of the synthesized app in new local sandboxes (the local runtime's
execution environments) and prints, per function, the median over ``--runs`` fresh processes of

* **init**: the handler module's import and module-level initialisation (Powertools, boto3
  clients), as measured inside the process: what Lambda reports as ``Init Duration`` minus
  the runtime's own start;
* **process**: from spawning the process to the handler being ready (adds interpreter start);
* **code**: the size of the function's deployment package (the asset folder; the
  Powertools layer is shared and not counted).

    python -m bench.cold_start [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from local.sandbox import Sandbox

# Sandboxes are spawned processes, and spawning re-imports this module in each of them: heavy
# imports (boto3, moto) stay inside main() so the handler's own imports are measured cold.


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    from local.server import LocalRuntime  # noqa: PLC0415  see the note on imports
    from local.synth import ROOT, synthesize  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as out:
        # The runtime resolves each function's environment (table names, endpoints) as make run does.
        runtime = LocalRuntime(synthesize(ROOT / "app.py", Path(out)), port=0).start()
        try:
            assert runtime.lambdas is not None
            print(f"{'function':<42} {'handler':<32} {'init p50':>9} {'process p50':>12} {'code':>8}")
            for function in runtime.lambdas.functions.values():
                spec = function.spec
                inits, processes = [], []
                for _ in range(args.runs):
                    started = time.monotonic()
                    identity = {"name": spec.name, "arn": spec.arn, "memory_mb": spec.memory_mb}
                    sandbox = Sandbox(spec.code_dir, spec.handler, function.environment, identity)
                    if not sandbox.wait_until_ready() or sandbox.init_ms is None:
                        raise SystemExit(f"{spec.name} did not initialise")
                    processes.append((time.monotonic() - started) * 1000)
                    inits.append(sandbox.init_ms)
                    sandbox.stop()
                print(
                    f"{spec.name:<42} {spec.handler:<32} {statistics.median(inits):7.0f} ms"
                    f" {statistics.median(processes):9.0f} ms {folder_size(spec.code_dir) / 1024:5.0f} KB"
                )
        finally:
            runtime.stop()


if __name__ == "__main__":
    main()
