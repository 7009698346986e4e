"""HTTP/1.1 persistent connections for the sandbox's API front, as AWS keeps them.

AWS endpoints speak HTTP/1.1 and keep a connection open between requests; the SDKs pool them (botocore's
`max_pool_connections`, "Config", https://docs.aws.amazon.com/botocore/latest/reference/config.html). Werkzeug's
development server, which moto serves through, answers every response with `Connection: close` (its
`run_wsgi`: "This disables HTTP/1.1 keep-alive connections"), so each API call paid a new TCP connection
and a new handler thread. This handler keeps the connection, which needs three things werkzeug skips:

* the request body is read to its end before the next request line, even when the application did not
  read it (an error answer): `Content-Length` bodies through a bounded stream, chunked ones to their last
  chunk (RFC 9112 section 9.3, "Persistence", https://www.rfc-editor.org/rfc/rfc9112#section-9.3);
* every response is delimited: its own `Content-Length`, else chunked transfer coding for an HTTP/1.1
  client, else (an HTTP/1.0 client) the connection closes after it (RFC 9112 section 6.3, "Message Body
  Length"); no body at all after HEAD, 1xx, 204 and 304;
* a response that could not be delimited (the application failed mid-body, wrote fewer bytes than it
  declared, or the unread body is too large to skip) closes the connection, so the client never reads a
  body into the next response.

The client closes a connection with `Connection: close` (then the answer carries it too). AWS closes idle
connections too, without a documented figure for its API endpoints; the sandbox closes one after
IDLE_TIMEOUT_S, Elastic Load Balancing's default idle timeout ("Configure the idle connection timeout",
https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/config-idle-timeout.html). urllib3 checks
a pooled connection before reusing it, and botocore retries a call whose connection closed under it.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.exceptions import ClientDisconnected, InternalServerError
from werkzeug.serving import BaseWSGIServer, DechunkedInput, make_server
from werkzeug.wsgi import LimitedStream

IDLE_TIMEOUT_S = 60  # an open connection with no next request is closed after this long
MAX_SKIPPED_BODY = 64 * 1024 * 1024  # unread request body skipped to keep the connection; past it: close
NO_BODY_STATUSES = frozenset({204, 304})


class KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler, answering on a persistent HTTP/1.1 connection."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S  # socketserver.StreamRequestHandler: the connection's socket timeout

    def setup(self) -> None:
        super().setup()
        # The head and the body go out in separate writes: with Nagle's algorithm the body waits for the
        # client's ACK of the head, which the client delays (~40 ms) on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connections(self.server).add(self.connection)

    def finish(self) -> None:
        connections(self.server).discard(self.connection)
        super().finish()

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's DechunkedInput ends at the last chunk
            self._body = environ["wsgi.input"]
        else:
            self._body = LimitedStream(self.rfile, _content_length(environ))
            environ["wsgi.input"] = self._body
        return environ

    def run_wsgi(self) -> None:
        # `Expect: 100-continue` was answered by http.server's parse_request (handle_expect_100)
        self.environ = environ = self.make_environ()
        response = _Response(self, environ["REQUEST_METHOD"])
        try:
            self._execute(self.server.app, environ, response)
        except (TimeoutError, ConnectionError) as error:
            self.close_connection = True
            self.connection_dropped(error, environ)
        except Exception as error:
            if self.server.passthrough_errors:
                raise
            self._answer_failure(error, environ, response)

    def _execute(self, app: Any, environ: dict[str, Any], response: _Response) -> None:
        body = app(environ, response.start)
        try:
            for data in body:
                response.write(data)
            response.finish()
        finally:
            if hasattr(body, "close"):
                body.close()
            self._skip_unread_body()

    def _answer_failure(self, error: Exception, environ: dict[str, Any], response: _Response) -> None:
        """A 500 when nothing was sent yet; else the answer is cut short, and only closing tells the client."""
        if response.status_sent is not None:
            self.close_connection = True
        else:
            try:
                self._execute(InternalServerError(), environ, _Response(self, environ["REQUEST_METHOD"]))
            except Exception:
                self.close_connection = True
        from werkzeug.debug.tbtools import DebugTraceback

        self.server.log("error", f"Error on request:\n{DebugTraceback(error).render_traceback_text()}")

    def _skip_unread_body(self) -> None:
        """Read what the application left of the request body, so the next request starts where it should."""
        body = getattr(self, "_body", None)
        if body is None:
            return
        try:
            if isinstance(body, LimitedStream):
                if body.limit - body.tell() > MAX_SKIPPED_BODY:
                    self.close_connection = True
                else:
                    body.exhaust()
            elif isinstance(body, DechunkedInput):
                skipped = 0
                while chunk := body.read(1024 * 1024):
                    skipped += len(chunk)
                    if skipped > MAX_SKIPPED_BODY:
                        self.close_connection = True
                        break
        except (OSError, ValueError, ClientDisconnected):  # the client went away or sent a bad chunk
            self.close_connection = True


class _Response:
    """One response on a kept-alive connection: status line and headers on the first write, then the body,
    delimited by its Content-Length or by chunks."""

    def __init__(self, handler: KeepAliveRequestHandler, method: str):
        self.handler, self.method = handler, method
        self.status_set: str | None = None
        self.headers_set: list[tuple[str, str]] = []
        self.status_sent: str | None = None
        self.chunked = False
        self.without_body = False
        self.declared: int | None = None
        self.written = 0

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info:
            try:
                if self.status_sent is not None:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status_set is not None:
            raise AssertionError("Headers already set")
        self.status_set, self.headers_set = status, headers
        return self.write

    def write(self, data: bytes) -> None:
        assert isinstance(data, bytes), "applications must write bytes"
        if self.status_sent is None:
            self._send_head()
        if data and not self.without_body:
            self._send_body(data)
        self.handler.wfile.flush()

    def finish(self) -> None:
        if self.status_sent is None:
            self.write(b"")
        if self.chunked:
            self.handler.wfile.write(b"0\r\n\r\n")
        elif self.declared is not None and not self.without_body and self.written != self.declared:
            self.handler.close_connection = True  # the client waits for bytes that will never come
        self.handler.wfile.flush()

    def _send_head(self) -> None:
        handler = self.handler
        assert self.status_set is not None, "write() before start_response"
        self.status_sent = self.status_set
        code_text, _, message = self.status_sent.partition(" ")
        code = int(code_text)
        handler.send_response(code, message)
        names = set()
        for name, value in self.headers_set:
            handler.send_header(name, value)
            names.add(name.lower())
            if name.lower() == "content-length":
                self.declared = int(value)
        self.without_body = self.method == "HEAD" or code < 200 or code in NO_BODY_STATUSES
        if not self.without_body and self.declared is None:
            if handler.request_version >= "HTTP/1.1":
                self.chunked = True
                handler.send_header("Transfer-Encoding", "chunked")
            else:
                handler.close_connection = True  # HTTP/1.0: the end of the body is the end of the connection
        if handler.close_connection and "connection" not in names:
            handler.send_header("Connection", "close")
        handler.end_headers()

    def _send_body(self, data: bytes) -> None:
        wfile = self.handler.wfile
        if self.chunked:
            wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        else:
            wfile.write(data)
        self.written += len(data)


def _content_length(environ: dict[str, Any]) -> int:
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


_connections_lock = threading.Lock()


def connections(server: Any) -> set[socket.socket]:
    """The server's open client connections (so that stopping the server also ends the kept-alive ones)."""
    with _connections_lock:
        if not hasattr(server, "orchard_connections"):
            server.orchard_connections = set()
        return server.orchard_connections


class KeepAliveMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer with KeepAliveRequestHandler; `stop()` also closes the kept-alive connections, so
    a stopped sandbox answers nothing, as before."""

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=KeepAliveRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    def stop(self) -> None:
        server: BaseWSGIServer | None = self._server
        super().stop()
        if server is None:
            return
        server.server_close()
        for connection in list(connections(server)):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
