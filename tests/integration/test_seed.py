"""`make seed` (infra/seed.py) against the live stack: what it says it made is there, through the API."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from infra.seed import BATCHES, RUN

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def get(api, path: str) -> dict:
    response = api.get(f"{api.base_url}{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def test_make_seed_creates_a_run_compute_batches_from_three_callers_and_50_typed_jobs_that_the_api_reports(
    api, tmp_path
):
    before = get(api, "/api/stats")
    out = tmp_path / "seeded.json"
    done = subprocess.run([sys.executable, "-m", "infra.seed", "--api", api.base_url, "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    made = json.loads(out.read_text())
    typed = made["typed"]

    # Typed jobs: 50 of every type and priority; the API's counts grew by exactly what was made.
    assert len(typed) == 50
    after = get(api, "/api/stats")
    assert after["total"] - before["total"] == 50
    made_by_type = Counter(job["type"] for job in typed)
    assert set(made_by_type) == {"email", "report", "notification"}
    assert {kind: after["by_type"][kind] - before["by_type"].get(kind, 0) for kind in made_by_type} == made_by_type
    assert {job["priority"] for job in typed} == {1, 2, 3, 4, 5}
    for job in typed:
        stored = get(api, f"/api/jobs/{job['id']}")
        assert (stored["type"], stored["priority"]) == (job["type"], job["priority"])
    # Scheduled ones wait, pending, for a time in the future.
    scheduled = [job for job in typed if job["scheduled_for"]]
    assert len(scheduled) == 5
    now = datetime.now(timezone.utc)
    for job in scheduled:
        stored = get(api, f"/api/jobs/{job['id']}")
        assert stored["status"] == "pending"
        assert datetime.fromisoformat(stored["scheduled_for"].replace("Z", "+00:00")) > now

    # Compute: one batch per caller, each request stored under its caller, and each caller listed.
    assert {caller: len(jobs) for caller, jobs in made["compute"].items()} == BATCHES
    for caller, jobs in made["compute"].items():
        for job in jobs:
            stored = get(api, f"/api/compute/{job['id']}")
            assert (stored["caller"], stored["number"]) == (caller, job["number"])
    assert set(BATCHES) <= {entry["caller"] for entry in get(api, "/api/callers")["callers"]}

    # The paced run is the current one (the api fixture left none running, and stops this one).
    status = get(api, "/api/status")
    assert made["run"]["run_id"] == status["run_id"]
    assert (status["x"], status["y"], status["total"]) == (RUN["x"], RUN["y"], RUN["total"])
    assert status["state"] in ("running", "completed")

    # What it printed says the same.
    assert made["run"]["run_id"] in done.stdout
    assert "50 jobs: email 17, report 17, notification 16" in done.stdout
    assert "31 numbers in one batch per caller: alice 20, bob 8, carol 3 (2 asked for by two callers" in done.stdout
