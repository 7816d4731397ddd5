"""A real PostgreSQL for the local runtime (``database=postgres``), in place of RDS Proxy and Aurora.

Debian's server (``postgresql``, which ``make install`` adds when it is missing) runs on
127.0.0.1 from a throwaway data directory, with TLS from a throwaway CA, so the sample
task connects exactly as it does to the proxy: the same host/port/database/user settings,
TLS verified against a CA (``DATABASE_CA_FILE``, here the throwaway one), an IAM token as
the password. The one difference is the proxy's check of that token, which needs AWS:
the local server trusts TLS connections from loopback instead, and refuses any
connection without TLS, as the proxy does with ``RequireTLS``.

The app's user owns its database and is no superuser (Aurora's master user isn't one
either), so it meets ``max_connections`` like any client. Part of the local runtime;
nothing here is deployed.
"""

from __future__ import annotations

import datetime
import glob
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 30


class PostgresNotInstalled(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def server_binaries() -> Path:
    """The newest installed server's ``bin`` directory (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresNotInstalled(
        "database=postgres runs a local PostgreSQL server, and none is installed: "
        "`make install` adds Debian's (apt-get install postgresql)"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for localhost/127.0.0.1 signed by it (valid one day)."""
    from cryptography import x509  # noqa: PLC0415  only database=postgres needs it
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "async-jobs local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)  # the server refuses a key others can read
    return ca_file, cert_file, key_file


class LocalPostgres:
    """``start()`` a server with ``database`` owned by ``user``; ``stop()`` removes it all."""

    def __init__(
        self, database: str, user: str, max_connections: int = 100, parameters: dict[str, str] | None = None
    ) -> None:
        """``parameters``: the cluster parameter group's; PostgreSQL's own (``statement_timeout``)
        are applied, Aurora's (``rds.*``) have no local meaning (TLS is required anyway)."""
        self.database = database
        self.user = user
        self.max_connections = max_connections
        self.parameters = {k: v for k, v in (parameters or {}).items() if not k.startswith("rds.")}
        self.port = 0
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> str:
        assert self._directory is not None
        return str(self._directory / "ca.crt")

    def environment(self) -> dict[str, str]:
        """What a function's database settings become locally: this server's port and CA
        (the host, ``localhost``, is what the proxy's endpoint resolves to)."""
        return {"DATABASE_PORT": str(self.port), "DATABASE_CA_FILE": self.ca_file}

    def start(self) -> LocalPostgres:
        binaries = server_binaries()
        self._directory = Path(tempfile.mkdtemp(prefix="async-jobs-postgres-"))
        self._directory.chmod(0o755)  # the CA file is read by the functions' sandboxes
        data = self._directory / "data"
        _, cert_file, key_file = _write_certificates(self._directory)
        owner = self._server_user()
        if owner is not None:  # PostgreSQL refuses to run as root
            for path in (self._directory, cert_file, key_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        as_owner: dict[str, Any] = {"user": owner.pw_uid, "group": owner.pw_gid} if owner else {}
        subprocess.run(  # noqa: S603  the server's own initdb
            [str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
            **as_owner,
        )
        (data / "pg_hba.conf").write_text(
            "# The superuser on the server's own socket (setup, tests); the app over TLS only.\n"
            f"local all {SUPERUSER} trust\n"
            f"hostssl {self.database} {self.user} 127.0.0.1/32 trust\n"
            f"hostssl {self.database} {self.user} ::1/128 trust\n"
        )
        self.port = _free_port()
        self._process = subprocess.Popen(  # noqa: S603
            [
                str(binaries / "postgres"),
                "-D",
                str(data),
                "-c",
                f"listen_addresses={HOST}",
                "-c",
                f"port={self.port}",
                "-c",
                f"unix_socket_directories={self._directory}",
                "-c",
                "ssl=on",
                "-c",
                f"ssl_cert_file={cert_file}",
                "-c",
                f"ssl_key_file={key_file}",
                "-c",
                f"max_connections={self.max_connections}",
                "-c",
                "superuser_reserved_connections=3",
                "-c",
                "fsync=off",
                *[option for name, value in self.parameters.items() for option in ("-c", f"{name}={value}")],
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self._directory / "server.log", "wb"),  # noqa: SIM115  kept open by the child
            **as_owner,
        )
        self._wait_until_ready()
        self.superuser_run(f'CREATE ROLE "{self.user}" LOGIN')
        self.superuser_run(f'CREATE DATABASE "{self.database}" OWNER "{self.user}"')
        return self

    def stop(self) -> None:
        if self._process is not None:
            self.thaw()
            self._process.terminate()  # SIGTERM: PostgreSQL's "smart" shutdown... then fast
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def superuser_run(self, sql: str, database: str = "postgres") -> list[list[Any]]:
        """Run ``sql`` as the superuser over the server's socket (setup and test checks)."""
        import pg8000.native  # noqa: PLC0415

        assert self._directory is not None
        connection = pg8000.native.Connection(
            SUPERUSER, database=database, unix_sock=f"{self._directory}/.s.PGSQL.{self.port}", timeout=10
        )
        try:
            return connection.run(sql) or []
        finally:
            connection.close()

    def app_connections(self) -> list[tuple[int, str]]:
        """The app user's open connections: (backend pid, application name)."""
        rows = self.superuser_run(
            f"SELECT pid, application_name FROM pg_stat_activity WHERE usename = '{self.user}' ORDER BY backend_start"  # noqa: S608  our own role's name
        )
        return [(int(pid), str(name)) for pid, name in rows]

    def freeze(self) -> None:
        """Stop every server process (SIGSTOP): connections stay open and nothing answers."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: int) -> None:
        """The postmaster and its children (each backend is its own session: no group to signal)."""
        if self._process is None:
            return
        os.kill(self._process.pid, signum)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            if int(fields[1]) == self._process.pid:  # its parent
                os.kill(int(stat.parent.name), signum)

    def _server_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SUPERUSER)
        except KeyError as error:
            raise PostgresNotInstalled("running as root needs the 'postgres' system user (Debian's package)") from error

    def _wait_until_ready(self) -> None:
        assert self._process is not None and self._directory is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = (self._directory / "server.log").read_text(errors="replace")
                raise RuntimeError(f"the local PostgreSQL server exited:\n{log[-2000:]}")
            try:
                self.superuser_run("SELECT 1")
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError(f"the local PostgreSQL server did not start within {START_TIMEOUT_SECONDS} s")
