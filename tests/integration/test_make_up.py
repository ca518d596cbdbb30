"""`make up`'s orchestrator: it brings the system up, and Ctrl-C leaves no process behind."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from infra.emulator import free_port
from tests.processes import alive, descendants, hangs_under_sigterm_bursts

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_up_serves_the_api_and_the_page_and_ctrl_c_stops_every_process():
    api_port, page_port = free_port(), free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "infra.stack", "--api-port", str(api_port), "--frontend-port", str(page_port),
         "--emulator-port", str(free_port()), "--workers", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 90
        for line in up.stdout:
            if "Pacer is up" in line or time.monotonic() > deadline:
                break
        assert requests.get(f"http://127.0.0.1:{api_port}/api/health", timeout=10).json()["status"] == "ok"
        assert "<html" in requests.get(f"http://127.0.0.1:{page_port}/", timeout=10).text.lower()
        tree = descendants(up.pid)
        assert len(tree) >= 7, tree  # emulator, API, page server, runtime supervisor, 2+2 workers, scheduler
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in tree if alive(pid)], "orphans left behind"
    finally:
        if up.poll() is None:
            up.kill()


# infra.stack's main() with a Stack that starts nothing, so only main()'s own signal handling is under test.
STACK_WITHOUT_SERVICES = """
import sys
import infra.stack


class NoServices:
    emulator = None
    api_url = endpoint_url = "http://127.0.0.1:9"

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


infra.stack.Stack = NoServices
sys.argv[1:] = []
infra.stack.main()
"""


def test_sigterms_in_quick_succession_never_hang_the_stack():
    # make forwards the SIGTERM that `timeout` or systemd sent, so the stack often gets two at once. Its
    # handler used to call Event.set(), which deadlocks when the main thread holds the Event's lock.
    hung = hangs_under_sigterm_bursts([sys.executable, "-c", STACK_WITHOUT_SERVICES], "Pacer is up",
                                      trials=25, cwd=ROOT)
    assert hung == 0, f"{hung} of 25 stacks hung after a burst of SIGTERMs"
