"""Plumbing shared by the loopback fakes: a threaded HTTP/1.1 server, a request log, faults.

A fake subclasses :class:`LoopbackServer` and implements ``handle(exchange)``. Faults are
checked before ``handle`` runs:

- ``fail(path, status=500)``: answer with that status and ``{"error": ...}``;
- ``drop(path, after_bytes=N)``: send the headers and N body bytes, then cut the connection;
- ``throttle(bytes_per_second)``: pace every response body.

``path`` is a regular expression matched in full against the percent-decoded URL path (no
query string); ``count(method, path)`` matches the request log the same way.
``stop()`` closes idle keep-alive connections and joins every handler thread.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

WRITE_SLICE = 16 * 1024


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # raw (still percent-encoded) URL path, no query
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    @property
    def parts(self) -> list[str]:
        """Path segments, each percent-decoded."""
        return [unquote(p) for p in self.path.strip("/").split("/")] if self.path != "/" else []


@dataclass
class Fault:
    pattern: re.Pattern[str]
    method: str | None
    status: int | None = None
    drop_after: int | None = None
    message: str = "injected failure"
    remaining: int | None = None  # None: every matching request

    def matches(self, method: str, path: str) -> bool:
        if self.remaining == 0 or (self.method is not None and self.method != method):
            return False
        return self.pattern.fullmatch(unquote(path)) is not None


class ConnectionDropped(Exception):
    """Raised inside a handler to abandon the response and cut the connection."""


class Exchange:
    """One request and the means to answer it."""

    def __init__(self, handler: _Handler, request: RecordedRequest, fault: Fault | None) -> None:
        self._handler = handler
        self.request = request
        self._drop_after = fault.drop_after if fault is not None else None
        self._sent = 0
        self.server = handler.fake

    @property
    def method(self) -> str:
        return self.request.method

    def send(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        content_length: int | None = None,
    ) -> None:
        """Send a whole response; for HEAD only the headers (``content_length`` overrides)."""
        self.start(
            status, headers, content_length=len(body) if content_length is None else content_length
        )
        if self.method != "HEAD":
            self.write(body)

    def send_json(
        self, status: int, value: object, headers: Mapping[str, str] | None = None
    ) -> None:
        all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        self.send(status, json.dumps(value).encode(), all_headers)

    def start(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        *,
        content_length: int | None = None,
        chunked: bool = False,
    ) -> None:
        h = self._handler
        h.send_response(status)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        elif content_length is not None:
            h.send_header("Content-Length", str(content_length))
        h.end_headers()

    def write(self, data: bytes) -> None:
        """Write body bytes, honouring the throttle and any injected drop."""
        limit = self._drop_after
        if limit is not None and self._sent + len(data) >= limit:
            self._raw_write(data[: max(limit - self._sent, 0)])
            raise ConnectionDropped
        self._raw_write(data)

    def write_chunk(self, data: bytes) -> None:
        """One chunk of a ``Transfer-Encoding: chunked`` body (empty data is skipped)."""
        if data:
            self.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def end_chunks(self) -> None:
        self._raw_write(b"0\r\n\r\n")

    def drop(self) -> None:
        raise ConnectionDropped

    def _raw_write(self, data: bytes) -> None:
        rate = self.server.bytes_per_second
        step = max(1, len(data) if rate is None else min(WRITE_SLICE, rate // 10))
        for start in range(0, len(data), step):
            if self.server.stopping.is_set():
                raise ConnectionDropped
            piece = data[start : start + step]
            self._handler.wfile.write(piece)
            self._sent += len(piece)
            if rate is not None:
                time.sleep(len(piece) / rate)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection ends after this (stop() ends it sooner)
    server: _HTTPServer

    @property
    def fake(self) -> LoopbackServer:
        return self.server.fake

    def setup(self) -> None:
        super().setup()
        # As Go's net/http (Ollama) does: without it, Nagle holds each small streamed line
        # until the client's delayed ACK (~40 ms), and a stream of tokens crawls.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=url.path or "/",
            query=parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        fake = self.fake
        fault = fake._record(request)
        exchange = Exchange(self, request, fault)
        try:
            if fault is not None and fault.status is not None:
                fake.send_fault(exchange, fault)
            else:
                fake.handle(exchange)
        except (ConnectionDropped, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            _shutdown(self.connection)


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


class _HTTPServer(ThreadingHTTPServer):
    # Non-daemon handler threads are the ones server_close() joins (socketserver._Threads).
    daemon_threads = False
    block_on_close = True

    def __init__(self, fake: LoopbackServer, port: int) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _Handler)


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 run in background threads: on a free port, or on
    ``port`` (a daemon that comes up where the client already looks: see ``dead_url``)."""

    def __init__(self, port: int = 0) -> None:
        self.bind_port = port
        self.stopping = threading.Event()
        self.bytes_per_second: int | None = None
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        self._httpd = _HTTPServer(self, self.bind_port)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self.stopping.set()
        httpd.shutdown()
        thread.join()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # wake handlers blocked reading a keep-alive connection
            _shutdown(conn)
        httpd.server_close()  # joins the handler threads
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- request log --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen with this method and a path fully matching the ``path`` regex."""
        pattern = re.compile(path) if path is not None else None
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method)
            and (pattern is None or pattern.fullmatch(unquote(r.path)) is not None)
        )

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- faults -------------------------------------------------------------------------------

    def fail(
        self,
        path: str,
        status: int = 500,
        *,
        method: str | None = None,
        times: int | None = None,
        message: str = "injected failure",
    ) -> Fault:
        """Answer requests to ``path`` with ``status`` (``times`` of them; None: all)."""
        return self._add_fault(
            Fault(re.compile(path), method, status=status, message=message, remaining=times)
        )

    def drop(
        self, path: str, after_bytes: int = 0, *, method: str | None = None, times: int | None = 1
    ) -> Fault:
        """Cut the connection after ``after_bytes`` of the response body."""
        return self._add_fault(
            Fault(re.compile(path), method, drop_after=after_bytes, remaining=times)
        )

    def throttle(self, bytes_per_second: int | None) -> None:
        self.bytes_per_second = bytes_per_second

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
        self.bytes_per_second = None

    def send_fault(self, exchange: Exchange, fault: Fault) -> None:
        """How an injected ``fail`` is answered; fakes override to add service headers."""
        assert fault.status is not None
        exchange.send_json(fault.status, {"error": fault.message})

    def handle(self, exchange: Exchange) -> None:
        raise NotImplementedError

    def _add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def _record(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            self._requests.append(request)
            for fault in self._faults:
                if fault.matches(request.method, request.path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add and self.stopping.is_set():
                _shutdown(conn)  # accepted while stopping: end it at once
            elif add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
