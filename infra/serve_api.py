"""Serve the Chalice app over HTTP with chalice local's own server classes.

`chalice local` would do, but its listen backlog of 5 overflows when many
pollers connect at once and those requests stall for about a second, and
keep-alive clients pay Nagle's 40 ms. This is the same LocalDevServer and
LocalGateway with a deeper backlog and TCP_NODELAY.

    python -m infra.serve_api --port 8000 --stage local
"""
from __future__ import annotations

import argparse
import os
import socket
import sys

from chalice import local
from chalice.cli.factory import CLIFactory


class PacerHTTPServer(local.ThreadedHTTPServer):
    request_queue_size = 512
    allow_reuse_address = True

    def get_request(self):
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class PacerRequestHandler(local.ChaliceRequestHandler):
    # chalice local's handler knows GET, PUT, POST, HEAD, DELETE, PATCH and OPTIONS; http.server answered any other
    # method with its own 501 HTML page (the fuzzer found TRACE). Through the gateway, the app answers 405 in JSON,
    # as it does for a known method a route lacks.
    do_TRACE = do_CONNECT = local.ChaliceRequestHandler._generic_handle


def build_server(project_dir: str, stage: str, host: str, port: int) -> local.LocalDevServer:
    sys.path.insert(0, project_dir)
    config = CLIFactory(project_dir, environ=os.environ).create_config_obj(chalice_stage_name=stage)
    app = config.chalice_app
    # What chalice.local.create_local_server does: per-thread current_request.
    local.CustomLocalChalice.__bases__ = (local.LocalChalice, app.__class__)
    app.__class__ = local.CustomLocalChalice
    return local.LocalDevServer(app, config, host, port, handler_cls=PacerRequestHandler, server_cls=PacerHTTPServer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project-dir", default=os.getcwd())
    parser.add_argument("--stage", default="local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = build_server(os.path.abspath(args.project_dir), args.stage, args.host, args.port)
    print(f"API on http://{args.host}:{args.port}/api/status", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
