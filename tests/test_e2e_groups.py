"""The end-to-end tests' groups hold: pytest-xdist's ``--dist loadgroup`` keeps a group on one
worker with the pinned pytest.

``make test`` runs the end-to-end tests in groups (``pytest_collection_modifyitems`` in
``tests/conftest.py``) so that each local runtime starts once and the longest groups start
first. pytest-xdist names each test after its group by rewriting a private
attribute that pytest 9.2 no longer reads (pytest-xdist issue #1386, open): nothing fails, the
groups are simply ignored, every module-scoped runtime starts on both workers and the fault
runs happen twice. Seen here: the end-to-end part took 868 s with pytest 9.2.0. This test
fails on such a pair of versions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

GROUPED = """
import pytest

pytestmark = pytest.mark.xdist_group("{group}")


@pytest.mark.parametrize("case", range(4))
def test_case(case):
    pass
"""


def test_a_group_runs_whole_on_one_worker(tmp_path: Path):
    for name, group in (("test_one", "first"), ("test_two", "first"), ("test_three", "second")):
        (tmp_path / f"{name}.py").write_text(GROUPED.format(group=group))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist", "-n", "2", "--dist", "loadgroup", "-v"],
        cwd=tmp_path,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # xdist alone: quicker
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workers: dict[str, set[str]] = {}
    for worker, group in re.findall(r"\[(gw\d)\].*PASSED \S+@(\w+)", result.stdout):
        workers.setdefault(group, set()).add(worker)
    assert set(workers) == {"first", "second"}, result.stdout  # every test named after its group
    assert all(len(ran_on) == 1 for ran_on in workers.values()), workers
