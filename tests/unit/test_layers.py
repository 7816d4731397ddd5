"""The layers of ``lambdas/jobs`` (DEVELOPERS.md, "Boundaries"): handlers are entry points
and never import one another; the domain (job model, state transitions, tasks, the
service and runner logic) reaches AWS only through the data-access modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lambdas" / "jobs"
HANDLERS = sorted((PACKAGE / "handlers").glob("*.py"))
# Pure logic: no boto3, no botocore, no clients module.
DOMAIN = ["model.py", "tasks.py", "service.py", "runner.py", "steps.py", "progress.py", "deadline.py", "reaper.py"]
AWS_MODULES = ("boto3", "botocore", "jobs.clients")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_checks_see_imports():
    # The check itself: a handler's own imports are found, so an empty result means something.
    assert "jobs.settings" in imported_modules(PACKAGE / "handlers" / "worker.py")


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda path: path.name)
def test_no_handler_imports_another_handler(handler: Path):
    imports = {name for name in imported_modules(handler) if name.startswith("jobs.handlers")}
    assert imports <= {"jobs.handlers"}, f"{handler.name} imports {sorted(imports)}; share code through a plain module"


@pytest.mark.parametrize("module", DOMAIN)
def test_the_domain_reaches_aws_only_through_data_access(module: str):
    found = {name for name in imported_modules(PACKAGE / module) if name.startswith(AWS_MODULES)}
    assert not found, f"jobs/{module} imports {sorted(found)}"
