"""The emulator's HTTP request handler: moto's, quiet, and keeping connections open.

werkzeug's development server, which moto's server is, answers every request
with `Connection: close`. So every AWS call of every Pacer process opened a
new TCP connection, and the emulator started a new thread for it: its main
thread had to win the GIL to accept each one, behind whatever request was
running. werkzeug closes because http.server cannot tell where a request's
body ends before the next request line, and its clean-up after each request
reads whatever is left on the socket.

This handler keeps a connection open when that is safe: the request says how
long its body is (`Content-Length`, not chunked, no `Expect: 100-continue`)
and does not ask to close. It reads exactly that body before the app runs and
hands the app a copy of it, so werkzeug's clean-up reads the copy, never the
next request. Any other request is answered as werkzeug answers it, and its
connection closed.
"""
from __future__ import annotations

import io
import socket

from moto.moto_server.werkzeug_app import MotoRequestHandler


class EmulatorRequestHandler(MotoRequestHandler):
    keep_alive = False  # this request's connection stays open after its answer

    def setup(self) -> None:
        super().setup()
        # werkzeug writes an answer's headers and body separately: on an open connection, Nagle's algorithm would
        # hold the body back until the client's delayed ACK of the headers, 40 ms later.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code="-", size="-"):
        # werkzeug logs every request: a few hundred lines a second under load, about 3% of the emulator's time,
        # in a log nobody reads. Server errors are still logged.
        if not isinstance(code, int) or code >= 500:
            super().log_request(code, size)

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length", "")
        # http.server leaves `close_connection` False only when this server speaks HTTP/1.1 and the client asked
        # to keep the connection (HTTP/1.1 without `Connection: close`, or `Connection: keep-alive`).
        self.keep_alive = (length.isdigit() and not self.close_connection
                           and "Transfer-Encoding" not in self.headers and "Expect" not in self.headers)
        if not self.keep_alive:
            super().run_wsgi()
            return
        connection_file = self.rfile
        self.rfile = io.BytesIO(connection_file.read(int(length)))
        try:
            super().run_wsgi()
        finally:
            self.rfile = connection_file

    def send_header(self, keyword: str, value: str) -> None:
        if self.keep_alive and keyword.lower() == "connection" and value.lower() == "close":
            return  # werkzeug's unconditional close: this connection's next request is safe to read
        super().send_header(keyword, value)
