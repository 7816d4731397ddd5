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
