"""Data access for tasks that query PostgreSQL (``database=postgres``): one connection per
execution environment, reused by every job it runs.

A Lambda execution environment runs one job at a time, for many jobs in a row; opening a
connection per job would cost a TCP and TLS handshake and an authentication each time and,
at Lambda's concurrency, exhaust the database's connections. So :func:`database` keeps one
connection per process, opened on first use (a job that never queries never connects), and
RDS Proxy pools the connections of every environment in front of Aurora.

* **Authentication**: an IAM token (``rds.generate_db_auth_token``, signed with the
  function's own role, no password anywhere), over TLS verified against the system's trust
  store (RDS Proxy presents ACM certificates) or ``DATABASE_CA_FILE``.
* **Reuse**: before each job's first statement the connection is checked with ``SELECT 1``;
  a connection the server or the proxy closed meanwhile is replaced.
* **Time**: connecting waits at most ``DATABASE_CONNECT_TIMEOUT_SECONDS``; a statement
  runs at most ``DATABASE_STATEMENT_TIMEOUT_SECONDS`` (the server's ``statement_timeout``,
  which fails the job), and the client waits a little longer for its answer; both waits
  stay a second short of the attempt's deadline, so a database that does not answer fails the attempt with its own
  error (:class:`DatabaseUnavailable`, retried) instead of the generic timeout.
* **Shutdown**: the connection is closed when the process ends (``atexit``; Lambda sends
  SIGTERM before shutdown only to functions with an extension registered, otherwise the
  proxy sees the client disappear and frees the connection after its idle client timeout).

Use it from a task: ``rows = database().run("SELECT ... WHERE id = :id", id=42)``.
"""

from __future__ import annotations

import atexit
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobs import clients
from jobs.deadline import remaining_seconds
from jobs.registry import TaskFailed, TransientTaskError
from jobs.settings import Settings

if TYPE_CHECKING:
    from pg8000.native import Connection

# Stop waiting this long before the attempt's deadline: enough to record the error.
DEADLINE_GUARD_SECONDS = 1.0
# The server ends a statement after DATABASE_STATEMENT_TIMEOUT_SECONDS itself (the cluster's
# statement_timeout, stacks/database.py) with a clear error; the client waits this much
# longer, so its own timeout means a server that does not answer at all.
SERVER_ANSWERS_FIRST_SECONDS = 5.0
# How long the check of a reused connection may take: a healthy one answers in milliseconds.
CHECK_TIMEOUT_SECONDS = 2.0
# SQLSTATE classes and codes that a later attempt may not meet: connection exceptions (08),
# too many connections (53300), the server shutting down or starting (57P01-57P03),
# serialization failures and deadlocks (40001, 40P01).
TRANSIENT_SQLSTATES = ("08", "53300", "53400", "57P01", "57P02", "57P03", "40001", "40P01")


class DatabaseUnavailable(TransientTaskError):
    """The database could not be reached, refused the connection or did not answer in time."""


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    name: str
    user: str
    ca_file: str | None
    connect_timeout_seconds: float
    statement_timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DatabaseSettings:
        if not settings.database_host:
            raise TaskFailed("this deployment has no database: deploy with -c database=postgres")
        return cls(
            host=settings.database_host,
            port=settings.database_port,
            name=settings.require("database_name"),
            user=settings.require("database_user"),
            ca_file=settings.database_ca_file,
            connect_timeout_seconds=settings.database_connect_timeout_seconds,
            statement_timeout_seconds=settings.database_statement_timeout_seconds,
        )


def iam_token(settings: DatabaseSettings) -> str:
    """A 15-minute IAM authentication token for ``settings.user`` at the proxy, used as the
    password; signed for the function's own region (``AWS_REGION``)."""
    return clients.rds().generate_db_auth_token(DBHostname=settings.host, Port=settings.port, DBUsername=settings.user)


def within_deadline(limit: float) -> float:
    """``limit`` seconds, or less if the attempt ends sooner (keeping the guard in hand)."""
    left = remaining_seconds() - DEADLINE_GUARD_SECONDS
    if left <= 0:
        raise DatabaseUnavailable("no time left in this attempt to reach the database")
    return min(limit, left)


def is_transient(error: Exception) -> bool:
    """Whether a database error may pass on a later attempt (by its SQLSTATE)."""
    code = str(_fields(error).get("C", ""))
    return any(code.startswith(prefix) for prefix in TRANSIENT_SQLSTATES)


def _fields(error: Exception) -> dict[str, Any]:
    """The server's error fields (``C``: SQLSTATE, ``M``: message) pg8000 puts in the error's
    first argument; empty for an error the driver raised itself."""
    return error.args[0] if error.args and isinstance(error.args[0], dict) else {}


class Database:
    """One reused connection to PostgreSQL; see the module docstring."""

    def __init__(self, settings: DatabaseSettings, password: Callable[[DatabaseSettings], str] = iam_token) -> None:
        self._settings = settings
        self._password = password
        self._connection: Connection | None = None
        self._in_transaction = False  # the connection was just used: no need to check it
        self.connections_opened = 0

    def run(self, sql: str, **params: Any) -> list[list[Any]]:
        """Run one statement (``:name`` placeholders) and return its rows (``[]`` for none)."""
        limit = self._settings.statement_timeout_seconds + SERVER_ANSWERS_FIRST_SECONDS
        with self._answer_within(limit) as connection:
            return connection.run(sql, **params) or []

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """``with database().transaction() as db: db.run(...)``: committed at the end, rolled back on error."""
        self.run("BEGIN")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            if self._connection is not None:
                try:
                    self.run("ROLLBACK")
                except TransientTaskError:
                    self.close()
            raise
        else:
            self.run("COMMIT")
        finally:
            self._in_transaction = False

    def close(self) -> None:
        connection, self._connection = self._connection, None
        self._in_transaction = False
        if connection is not None:
            with suppress(Exception):  # already broken: nothing more to release
                connection.close()

    @contextmanager
    def _answer_within(self, limit: float) -> Iterator[Connection]:
        """The open connection with its socket timeout set, errors translated: a network
        failure or timeout closes it (its state is unknown) and is transient."""
        import pg8000.native  # noqa: PLC0415  only tasks that query pay for the driver

        connection = self._open()
        _set_timeout(connection, within_deadline(limit))
        try:
            yield connection
        except (pg8000.native.InterfaceError, OSError) as error:  # pg8000 lets a read's timeout through
            self.close()
            raise DatabaseUnavailable(f"lost the database connection: {_reason(error)}") from error
        except pg8000.native.DatabaseError as error:
            if is_transient(error):
                self.close()
                raise DatabaseUnavailable(f"database error: {_message(error)}") from error
            raise
        except BaseException:
            # Interrupted mid-statement (the attempt's deadline): the protocol state is unknown.
            self.close()
            raise

    def _open(self) -> Connection:
        """The connection, checked if reused, (re)opened if needed."""
        import pg8000.native  # noqa: PLC0415

        if self._connection is not None and self._in_transaction:
            return self._connection
        if self._connection is not None:
            try:
                _set_timeout(self._connection, within_deadline(CHECK_TIMEOUT_SECONDS))
                self._connection.run("SELECT 1")
                return self._connection
            except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError):
                self.close()  # closed by the server or the proxy since the last job: replace it
            except BaseException:
                self.close()  # interrupted mid-check: its state is unknown
                raise
        settings = self._settings
        try:
            self._connection = pg8000.native.Connection(
                user=settings.user,
                host=settings.host,
                port=settings.port,
                database=settings.name,
                password=self._password(settings),
                ssl_context=_tls(settings.ca_file),
                timeout=within_deadline(settings.connect_timeout_seconds),
                application_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "jobs"),
            )
        except ssl.SSLCertVerificationError as error:  # a certificate that does not verify will not start to
            raise TaskFailed(f"TLS to the database at {settings.host}:{settings.port} failed: {error}") from error
        except (pg8000.native.InterfaceError, OSError) as error:  # OSError: TLS cut off or timed out
            raise DatabaseUnavailable(
                f"cannot connect to the database at {settings.host}:{settings.port}: {_reason(error)}"
            ) from error
        except pg8000.native.DatabaseError as error:
            if is_transient(error):
                raise DatabaseUnavailable(f"the database refused the connection: {_message(error)}") from error
            raise TaskFailed(f"the database refused the connection: {_message(error)}") from error
        self.connections_opened += 1
        return self._connection


def _tls(ca_file: str | None) -> ssl.SSLContext:
    """Certificate and host name verified: the proxy requires TLS, and an unverified TLS
    connection would hand the token to whoever answers."""
    return ssl.create_default_context(cafile=ca_file)


def _set_timeout(connection: Connection, seconds: float) -> None:
    # pg8000 sets its socket's timeout only when connecting; each statement here gets its
    # own bound, so set it on that socket (pinned pg8000; tests/local/test_database.py).
    sock: socket.socket = connection._usock
    sock.settimeout(seconds)


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    cause = error.__cause__ or error.__context__
    if isinstance(cause, TimeoutError):
        return "no answer in time"
    return f"{error}" + (f" ({cause})" if cause is not None else "")


def _message(error: Exception) -> str:
    details = _fields(error)
    if details:
        return f"{details.get('M', error)} (SQLSTATE {details.get('C', '?')})"
    return str(error)


_database: Database | None = None


def database() -> Database:
    """This process's :class:`Database`, configured from the environment on first use."""
    global _database  # noqa: PLW0603  one per execution environment, by design
    if _database is None:
        settings = DatabaseSettings.from_settings(Settings.from_env())
        _database = Database(settings)
        atexit.register(_database.close)
    return _database
