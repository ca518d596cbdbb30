"""The embedded AWS emulator: moto's server, as its own OS process.

`python -m infra.emulator --port 5000` serves until it is signalled.
`start_emulator()` starts one on a free port and waits until it answers.
"""
from __future__ import annotations

import argparse
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


def wait_for_http(url: str, timeout: float = 30.0, cancelled: Callable[[], bool] = lambda: False) -> None:
    """Wait until `url` answers at all; raise StopRequested as soon as `cancelled()` says so."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if cancelled():
            raise StopRequested()
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
    port = port or free_port()
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
        wait_for_http(f"{endpoint}/moto-api/", cancelled=cancelled)
    except (TimeoutError, StopRequested):
        process.kill()
        process.wait()
        raise
    return Emulator(process=process, endpoint_url=endpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PACER_EMULATOR_PORT", "5000")))
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    from infra import moto_patches

    moto_patches.apply()
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    print(f"moto server on http://{args.host}:{args.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
