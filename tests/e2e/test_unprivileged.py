"""`make run` needs no root and no system package: the ``database=postgres`` variant, the one
with a server of its own, served by ``make run`` as an unprivileged user whose PATH has no
``apt-get``, ``sudo``, ``initdb`` or ``postgres``, and a job of that variant run through it.

The copy is this checkout's files (no .git, build output or caches) in a folder the user owns, using this checkout's
virtualenv (read-only: ``make`` finds it up to date). Under root the run drops to ``nobody``;
because this machine's Python lives in root's private home, ``nobody`` keeps one capability,
CAP_DAC_READ_SEARCH (read any file), and nothing else: no write outside its folder, no root
identity, which PostgreSQL checks. On a developer's own account it runs as that account."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs_cli import main as cli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
NOT_ON_PATH = {"apt", "apt-get", "dpkg", "brew", "dnf", "yum", "sudo", "su", "initdb", "postgres", "pg_ctl"}
STARTUP_TIMEOUT_SECONDS = 240
CAP_DAC_READ_SEARCH = 2  # linux/capability.h


def shadow_path(into: Path) -> str:
    """A PATH of one folder: a link to each command on ours but those in ``NOT_ON_PATH``."""
    into.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = into / entry.name
            if entry.name in NOT_ON_PATH or target.exists() or not os.access(entry.path, os.X_OK):
                continue
            target.symlink_to(os.path.realpath(entry.path))
    return str(into)


def tracked_copy(into: Path) -> None:
    """This checkout's files (tracked, or new and not ignored), mtimes kept (so the venv stays up to date for make)."""
    listed = subprocess.run(  # noqa: S603  git on this checkout (safe.directory: its owner may not be us)
        ["git", "-c", f"safe.directory={ROOT}", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    (into / ".venv").symlink_to(VENV)


@pytest.fixture
def unprivileged() -> Iterator[tuple[Path, list[str], dict[str, str]]]:
    """A folder of our own, the command prefix that runs as its user, and that user's environment."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs this checkout's git index to copy the tracked files")
    prefix: list[str] = []
    nobody = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
    if nobody is not None:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root needs util-linux's setpriv to drop to nobody")
        if not _bounding_set_has(CAP_DAC_READ_SEARCH):  # e.g. a container without it: nothing to keep
            pytest.skip("root without CAP_DAC_READ_SEARCH cannot hand nobody the read access the venv needs")
        prefix = [
            setpriv,
            f"--reuid={nobody.pw_uid}",
            f"--regid={nobody.pw_gid}",
            "--clear-groups",
            "--inh-caps=-all,+dac_read_search",
            "--ambient-caps=+dac_read_search",
            "--bounding-set=-all,+dac_read_search",
        ]
    folder = Path(tempfile.mkdtemp(prefix="async-jobs-unprivileged-"))
    try:
        home = folder / "home"
        home.mkdir()
        tracked_copy(folder / "app")
        environment = {
            "PATH": shadow_path(folder / "bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PORT": "0",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": os.environ.get(
                "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", ""
            ),
        }
        if nobody is not None:
            for path in (folder, *folder.rglob("*")):
                os.lchown(path, nobody.pw_uid, nobody.pw_gid)
        yield folder, prefix, environment
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bounding_set_has(capability: int) -> bool:
    """Whether this process may hand ``capability`` on (Linux's /proc; elsewhere, assume so)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return True
    [bounding] = [line.split()[1] for line in status.splitlines() if line.startswith("CapBnd:")]
    return bool(int(bounding, 16) >> capability & 1)


def test_make_run_serves_the_database_variant_without_root_or_a_system_package(
    unprivileged: tuple[Path, list[str], dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, prefix, environment = unprivileged
    for command in NOT_ON_PATH:
        assert shutil.which(command, path=environment["PATH"]) is None
    make = shutil.which("make", path=environment["PATH"])
    assert make is not None
    served = subprocess.Popen(  # noqa: S603  make run, as the README says
        [*prefix, make, "run", "CDK_ARGS=-c database=postgres"],
        cwd=folder / "app",
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    printed: list[str] = []
    serving = threading.Event()

    def read_banner() -> None:
        assert served.stdout is not None
        try:
            for line in served.stdout:
                printed.append(line)
                if line.startswith("Press Ctrl-C"):
                    serving.set()
        finally:
            serving.set()  # make run ended: nothing more to wait for

    threading.Thread(target=read_banner, daemon=True).start()
    try:
        serving.wait(timeout=STARTUP_TIMEOUT_SECONDS)  # a cap: it returns as soon as the banner is out
        text = "".join(printed)
        url = re.search(r"API:\s+(\S+)", text)
        assert url and "Database: PostgreSQL on localhost:" in text, text[-4000:]
        running_as = {int(uid) for uid in _group_uids(served.pid)}
        assert running_as and 0 not in running_as, f"processes of make run as root: {running_as}"
        if "sales_report" not in (folder / "app" / "lambdas" / "jobs" / "tasks.py").read_text():
            pytest.skip("the sales_report example (the app's database task) has been deleted")
        assert cli.main(["--api-url", url.group(1), "submit", "sales_report", "--wait"]) == 0
        printed_by_cli = capsys.readouterr()
        assert "COMPLETED" in printed_by_cli.err and '"regions"' in printed_by_cli.out  # the report, from PostgreSQL
    finally:
        os.killpg(served.pid, signal.SIGINT)
        try:
            served.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(served.pid, signal.SIGKILL)
            served.wait()


def _group_uids(group: int) -> list[str]:
    """The user ids of every process in process group ``group`` (make, the runtime, PostgreSQL)."""
    table = subprocess.run(
        ["ps", "-A", "-o", "pgid=", "-o", "uid="],  # noqa: S607  Linux's and macOS's ps
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [uid for pgid, uid in (row.split() for row in table.splitlines()) if int(pgid) == group]
