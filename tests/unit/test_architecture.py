"""The layout's rules, read from the source: no import cycle, and no adapter imports a service."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ("dynamo", "memory", "sqs", "s3")  # the modules that talk to a store, or stand in for one


def module_imports() -> dict[str, set[str]]:
    """Each chalicelib module and the chalicelib modules it imports at its top level (imports inside a function
    run later, so they cannot make an import cycle)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        imported = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chalicelib"):
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names if alias.name.startswith("chalicelib"))
        graph[name] = imported
    return {name: {m for m in imported if m in graph and m != name} for name, imported in graph.items()}


def test_the_domain_has_no_import_cycle():
    graph = module_imports()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, "import cycle: " + " -> ".join(path[path.index(name):] + [name])
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, path + [name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert len(done) == len(graph) > 40  # every module was walked


def test_no_adapter_imports_a_service():
    graph = module_imports()
    adapters = [name for name in graph if name.rsplit(".", 1)[-1] in ADAPTERS]
    assert len(adapters) >= 14  # a DynamoDB adapter and an in-memory twin per store, and SQS's
    for adapter in adapters:
        services = sorted(m for m in graph[adapter] if m.endswith(".service") or m in ("chalicelib.container",
                                                                                          "chalicelib.clock"))
        assert services == [], f"{adapter} imports {services}"
