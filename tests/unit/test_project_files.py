"""The files a fork inherits for its own habits: CI, dependency updates, pre-commit hooks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def test_the_ci_workflow_runs_what_ci_runs_here():
    workflow = load(".github/workflows/ci.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request"}
    assert workflow["permissions"] == {"contents": "read"}
    [job] = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs == ["bash .ci/run"]
    versions = {step["uses"].split("@")[0]: step.get("with", {}) for step in job["steps"] if "uses" in step}
    assert versions["actions/setup-python"]["python-version"] == "3.11"  # the Lambda code's floor (pyproject)
    assert versions["actions/setup-node"]["node-version"] in ("22", "24")  # what the AWS CDK supports
    # Both systems the README promises (runners this machine cannot run: their jobs are defined, not run here).
    assert job["runs-on"] == "${{ matrix.os }}"
    oses = job["strategy"]["matrix"]["os"]
    assert any(os.startswith("ubuntu") for os in oses) and any(os.startswith("macos") for os in oses)
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_dependabot_updates_every_pinned_ecosystem():
    configured = load(".github/dependabot.yml")["updates"]
    updates = {(update["package-ecosystem"], update["directory"]) for update in configured}
    assert {("pip", "/"), ("npm", "/"), ("github-actions", "/")} <= updates
    [pip] = [update for update in configured if update["package-ecosystem"] == "pip"]
    # Powertools comes from the layer in AWS; its pin moves with powertools_layer_version, by hand.
    assert {"dependency-name": "aws-lambda-powertools"} in pip["ignore"]


def test_pre_commit_runs_the_linters_make_test_runs():
    hooks = {hook["id"]: hook for repo in load(".pre-commit-config.yaml")["repos"] for hook in repo["hooks"]}
    assert {"check-json", "check-yaml", "ruff", "ruff-format", "mypy"} <= set(hooks)
    assert hooks["ruff"]["entry"].startswith(".venv/bin/ruff check")
    assert hooks["ruff-format"]["entry"] == ".venv/bin/ruff format"
    assert hooks["mypy"]["stages"] == ["manual"]  # optional: it takes a minute
    pinned = (ROOT / "requirements-dev.txt").read_text()
    assert "ruff==" in pinned and "mypy==" in pinned


NOT_OURS = {".git", ".venv", "node_modules", "cdk.out", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}


def test_every_json_and_yaml_file_of_the_project_parses():
    checked = 0
    for path in sorted(ROOT.rglob("*")):
        parts = set(path.relative_to(ROOT).parts)
        if parts & NOT_OURS or any(part.startswith("cdk.out") for part in parts) or not path.is_file():
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix in (".yml", ".yaml"):
            yaml.safe_load(path.read_text())
        else:
            continue
        checked += 1
    assert checked >= 6  # cdk.json, package*.json, docs/*.json, the workflow, dependabot, pre-commit


def test_the_readme_fits_on_a_screen_and_reaches_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    pages = {path.name for path in (ROOT / "docs").glob("*.md")}
    linked = set(re.findall(r"\]\(docs/([a-z0-9-]+\.md)", readme))
    assert pages and pages == linked, f"not linked from the README: {pages - linked}; missing: {linked - pages}"


def test_every_relative_link_in_the_readme_and_docs_leads_somewhere():
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for document in documents:
        for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text()):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            path = (document.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{document.relative_to(ROOT)} links to {target}, which does not exist"
            checked += 1
    assert checked > 20


def test_no_target_reaches_for_a_system_package_manager_or_root():
    # Everything installs from PyPI and npm, the local PostgreSQL server included (a wheel):
    # `make run` and `make test` work on a Mac or without root. `-B` prints every recipe.
    make = shutil.which("make") or "make"
    for target in ("run", "test", "install", "deploy", "synth", "destroy", "doctor"):
        dry_run = subprocess.run(  # noqa: S603  fixed arguments
            [make, "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
        ).stdout
        assert "pip install" in dry_run, dry_run  # -B: the recipes ran from the venv's up
        assert not re.search(r"\b(apt-get|apt|brew|dnf|yum|sudo|initdb)\b", dry_run), f"make {target}:\n{dry_run}"


def test_the_deploy_path_needs_only_the_venv_and_the_cdk_cli():
    make = shutil.which("make") or "make"
    for target in ("deploy", "synth", "destroy", "doctor"):
        dry_run = subprocess.run(  # noqa: S603  fixed arguments
            [make, "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
        ).stdout
        assert "cdk" in dry_run or "doctor" in dry_run, dry_run
        assert "local" not in dry_run, f"make {target} starts the local runtime:\n{dry_run}"


def test_the_node_version_check_names_the_supported_versions():
    """The CDK supports Node.js 22 and 24; 20 (past its end of life) works with a note."""
    make = shutil.which("make") or "make"

    def check(major: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603  fixed arguments
            [make, "-s", f"NODE_MAJOR={major}", "node-version"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert (check("24").returncode, check("24").stdout, check("22").returncode) == (0, "", 0)
    assert check("20").returncode == 0 and "past its end of life" in check("20").stdout
    for unsupported in ("18", ""):
        refused = check(unsupported)
        assert refused.returncode != 0 and "install" in refused.stderr and "22 or 24" in refused.stderr


def test_make_test_runs_every_part_and_prints_the_time_of_each():
    make = shutil.which("make") or "make"
    recipe = subprocess.run(  # noqa: S603  fixed arguments
        [make, "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    for part in ("lint (ruff)", "type checks", "in-process tests", "end-to-end tests", "time per part", "total"):
        assert part in recipe, recipe
    assert '-m "not e2e"' in recipe and "-m e2e" in recipe  # together, every test
    assert "-n " in recipe  # the in-process tests on one worker per core
