"""A container wired to the in-memory twins, for unit tests."""
from chalicelib.aws.memory import MemoryQueue
from chalicelib.bots.memory import MemoryBotStore
from chalicelib.compute.memory import MemoryComputeStore
from chalicelib.container import Container
from chalicelib.datalake.memory import MemoryCatalog, MemoryObjectStore
from chalicelib.dlq.memory import MemoryFailureLog
from chalicelib.fleet.memory import MemoryFleetStore
from chalicelib.runs.memory import MemoryRunStore
from chalicelib.settings import Settings
from chalicelib.typed.memory import MemoryTypedJobStore
from chalicelib.worker.memory import MemoryResultLedger


def memory_ledger(runs=None, compute=None, typed_jobs=None) -> MemoryResultLedger:
    """The ledger's twin with every origin's settlement (a twin left out is a fresh one)."""
    runs, compute = runs or MemoryRunStore(), compute or MemoryComputeStore()
    typed_jobs = typed_jobs or MemoryTypedJobStore()
    return MemoryResultLedger({"run": runs.settle, "compute": compute.settle, "typed": typed_jobs.settle},
                              outcomes=typed_jobs.results)


class MemoryContainer(Container):
    def __init__(self, **settings):
        super().__init__(Settings(**{"read_cache_s": 0, "admin_token": "secret", "executor_latency_s": 0,
                                  "admission_ask_every_s": 0, **settings}))
        self.runs = MemoryRunStore()
        self.compute = MemoryComputeStore()
        self.typed_jobs = MemoryTypedJobStore()
        self.ledger = memory_ledger(self.runs, self.compute, self.typed_jobs)
        self.jobs_queue = MemoryQueue()
        self.ticks_queue = MemoryQueue()
        self.jobs_dlq = MemoryQueue()
        self.bots = MemoryBotStore(self.typed_jobs)
        self.bot_ledger = MemoryResultLedger({"typed": self.bots.settle}, outcomes=self.typed_jobs.results)
        self.fleet = MemoryFleetStore()
        self.failure_log = MemoryFailureLog()
        self.datalake_objects = MemoryObjectStore()
        self.datalake_catalog = MemoryCatalog()

    def health(self) -> dict:
        return {"memory": {"ok": True, "detail": "in-process"}}
