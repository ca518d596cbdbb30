"""Finding a stack's OS processes through /proc, for drills that kill them."""
from __future__ import annotations

from pathlib import Path


def children_of(pid: int) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def descendants(pid: int) -> set[int]:
    tree, found, frontier = children_of(pid), set(), [pid]
    while frontier:
        for child in tree.get(frontier.pop(), []):
            found.add(child)
            frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def job_workers(stack) -> list[int]:
    """Live runtime worker processes serving the jobs queue."""
    supervisor = stack.services["runtime"].process.pid
    found = []
    for pid in descendants(supervisor):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"process_jobs" in argv and alive(pid):
            found.append(pid)
    return sorted(found)
