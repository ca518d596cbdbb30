"""A container wired to the in-memory twins, for unit tests."""
from chalicelib.adapters.memory import (MemoryComputeStore, MemoryFailureLog, MemoryFleetStore, MemoryQueue, MemoryResultLedger,
                                       MemoryRunRepository, MemoryTaskStore)
from chalicelib.settings import Container, Settings


class MemoryContainer(Container):
    def __init__(self, **settings):
        super().__init__(Settings(**{"status_cache_s": 0, "admin_token": "secret", "executor_latency_s": 0, **settings}))
        self.runs = MemoryRunRepository()
        self.compute = MemoryComputeStore()
        self.tasks = MemoryTaskStore()
        self.ledger = MemoryResultLedger(self.runs, self.compute, self.tasks)
        self.jobs_queue = MemoryQueue()
        self.ticks_queue = MemoryQueue()
        self.jobs_dlq = MemoryQueue()
        self.fleet = MemoryFleetStore()
        self.failure_log = MemoryFailureLog()

    def health(self) -> dict:
        return {"memory": {"ok": True, "detail": "in-process"}}
