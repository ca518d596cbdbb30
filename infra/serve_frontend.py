"""A tiny static server for the page in frontend/.

`python -m infra.serve_frontend --port 8080 --dir frontend [--host 127.0.0.1]`
serves the folder until SIGINT or SIGTERM. Every response carries
`Cache-Control: no-cache`, so a reload always picks up an edited file.
"""
from __future__ import annotations

import argparse
import functools
import signal
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class NoCacheHandler(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        # One line per request would drown the logs of the processes around it.
        pass


def make_server(host: str, port: int, directory: str | Path) -> ThreadingHTTPServer:
    handler = functools.partial(NoCacheHandler, directory=str(directory))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--dir", default="frontend", help="folder to serve")
    args = parser.parse_args()

    directory = Path(args.dir).resolve()
    if not directory.is_dir():
        parser.error(f"--dir {args.dir} is not a folder")

    server = make_server(args.host, args.port, directory)

    def shut_down(signum, frame) -> None:
        # shutdown() waits for serve_forever() to return, so it must not run on
        # the thread that is serving, which is the one receiving the signal.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)

    host, port = server.server_address[:2]
    print(f"frontend on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
