"""Synthesize a CDK app into a cloud assembly, as ``cdk synth`` does, without the CDK CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def synthesize(app: Path, outdir: Path, context: dict[str, Any] | None = None) -> Path:
    """Run ``app`` with ``outdir`` as its output and ``context`` as ``-c`` values; return ``outdir``."""
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context or {})}
    result = subprocess.run(  # noqa: S603  fixed arguments
        [sys.executable, str(app)], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    if result.returncode != 0:
        raise RuntimeError(f"synthesizing {app} failed:\n{result.stderr[-3000:]}")
    return outdir


def parse_context(pairs: list[str]) -> dict[str, str]:
    """``-c name=value`` pairs (the CDK CLI's syntax) as a context dict."""
    context: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"expected -c name=value, got {pair!r}")
        context[name] = value
    return context


def main(argv: list[str] | None = None) -> int:
    """``python -m local.synth --out cdk.out [-c name=value ...]`` (what ``make run`` does)."""
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m local.synth", description=main.__doc__)
    parser.add_argument("--out", type=Path, default=Path("cdk.out"))
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    try:
        synthesize(ROOT / "app.py", args.out.resolve(), parse_context(args.context))
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
