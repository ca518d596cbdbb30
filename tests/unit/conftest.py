"""The app, in-process, over a test's in-memory container `c` (each test module defines `c` as it needs)."""
import pytest
from chalice.test import Client

from app import app
from chalicelib.container import reset_container


@pytest.fixture
def client(c):
    reset_container(c)
    try:
        with Client(app) as client:
            yield client
    finally:
        reset_container()
