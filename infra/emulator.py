"""The embedded AWS emulator: moto's server, as its own OS process.

`python -m infra.emulator --port 5000` serves until it is signalled.
`start_emulator()` starts one on a free port and waits until it answers.
"""
from __future__ import annotations

import argparse
import errno
import gc
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Callable

from infra.process import child_process_kwargs
from infra.signals import StopRequested


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PortInUse(RuntimeError):
    """A port a process of ours must listen on is held by someone else (another `make up`, say)."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding `host:port` fails because something holds it. SO_REUSEADDR, as our servers set it, so a
    connection in TIME_WAIT from a stack that just stopped does not count."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def ensure_port_free(port: int, what: str) -> None:
    if port_in_use(port):
        raise PortInUse(f"port {port} ({what}) is already in use: is another `make up` running? "
                        "Stop it, or choose other ports (--api-port, --frontend-port, --emulator-port).")


def wait_for_http(url: str, timeout: float = 30.0, cancelled: Callable[[], bool] = lambda: False,
                  process: subprocess.Popen | None = None) -> None:
    """Wait until `url` answers at all; raise StopRequested as soon as `cancelled()` says so. With `process`,
    fail as soon as it exits: an answer is then someone else's."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if cancelled():
            raise StopRequested()
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process that should answer {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered; the status does not matter here
        except OSError as exc:
            last_error = exc
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last_error}")


@dataclass
class Emulator:
    process: subprocess.Popen
    endpoint_url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_emulator(port: int | None = None, log_path: str | None = None,
                   cancelled: Callable[[], bool] = lambda: False) -> Emulator:
    if port:
        ensure_port_free(port, "emulator")
    else:
        port = free_port()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.emulator", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own session, so Ctrl-C in a terminal does not stop it under workers still finishing a batch:
        # whoever started it stops it, last.
        start_new_session=True,
        **child_process_kwargs(),
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{endpoint}/moto-api/", cancelled=cancelled, process=process)
    except (TimeoutError, RuntimeError, StopRequested):
        process.kill()
        process.wait()
        raise
    return Emulator(process=process, endpoint_url=endpoint)


def freeze_after_full_collections() -> None:
    """After each full (generation 2) garbage collection, move what survived out of the collector's sight.

    The emulator keeps every item, message and stream record it stores as
    Python objects, and a full collection walks them all: over a 60,000-job
    paced run its pauses grew from 60 to 600 ms, 3.4 s of the emulator's
    time in all, and they keep growing with what it stores (in the
    100,000-request load run no job finished for up to 6 s at a time).
    Frozen, the stored objects are no longer walked: the same run made 43
    full collections of at most 63 ms, 0.65 s in all. The price is memory:
    cyclic garbage that was alive when frozen is never reclaimed (the
    emulator's resident size after that run was 671 MB, against 596 MB).
    Objects freed by reference counting, as deleted items are, go as before.
    """
    def frozen(phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    gc.callbacks.append(frozen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PACER_EMULATOR_PORT", "5000")))
    args = parser.parse_args()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    from infra import moto_patches
    from infra.emulator_http import EmulatorRequestHandler

    moto_patches.apply()
    freeze_after_full_collections()
    # What moto's ThreadedMotoServer does, but binding in the main thread: there a port already in use ends
    # the process (werkzeug prints why and exits 1), where ThreadedMotoServer's thread died and start() waited
    # forever, serving nothing, while whoever held the port answered in its place.
    server = make_server(args.host, args.port, DomainDispatcherApplication(create_backend_app), threaded=True,
                         request_handler=EmulatorRequestHandler)
    print(f"moto server on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
