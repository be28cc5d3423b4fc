"""The repository's shape, checked from the source (no Airflow, no services): each flow's code in
its own package, reached only by its own DAGs; no operator run inside another task."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from finflows import flowspec

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "plugins" / "finflows" / "flows"
DAG_FLOW = {dag_id: flow.package for dag_id, (flow, _dag) in flowspec.dags().items()}  # from the specs


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def _flow_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["finflows", "flows"] and len(parts) > 2 else None


def test_every_dag_has_its_flow_package_and_reaches_no_other():
    dags = {p.stem for p in (ROOT / "dags").glob("*.py")}
    assert dags == set(DAG_FLOW), "a new DAG needs its flow package named here"
    for dag, flow in DAG_FLOW.items():
        assert (FLOWS / flow / "__init__.py").exists()
        reached = {_flow_of(m) for m in _imports(ROOT / "dags" / f"{dag}.py")} - {None}
        assert reached == {flow}, f"dags/{dag}.py reaches {sorted(reached)}, not only finflows.flows.{flow}"


def test_no_flow_package_imports_another_flows_code():
    for package in (p for p in FLOWS.iterdir() if (p / "__init__.py").exists()):
        for module in package.glob("*.py"):
            reached = {_flow_of(m) for m in _imports(module)} - {None, package.name}
            assert not reached, f"{module.relative_to(ROOT)} imports {sorted(reached)}"


def test_no_task_body_runs_an_operator():
    """A provider operator is a task of its own: instantiating one inside a task body (and calling
    ``execute``) hides it from the UI, retries and lineage."""
    for module in FLOWS.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
                assert not name.endswith("Operator"), f"{module.relative_to(ROOT)}:{node.lineno} makes a {name}"


def test_every_error_finflows_defines_has_the_one_root():
    """Each exception class in plugins/finflows descends from ``FinflowsError`` (directly or
    through another of ours), so ``except FinflowsError`` means "finflows refused this" and a new
    error cannot forget it. Read from the source: a class whose bases name an exception."""
    import importlib
    import inspect

    from finflows.errors import FinflowsError

    found = []
    for path in sorted((ROOT / "plugins" / "finflows").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT / "plugins").with_suffix("").parts).removesuffix(".__init__")
        names = [n.name for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.ClassDef)]
        if not names:
            continue
        loaded = importlib.import_module(module)
        for name in names:
            cls = getattr(loaded, name)
            if inspect.isclass(cls) and issubclass(cls, BaseException):
                found.append(cls)
    assert len(found) > 20, found  # the scan sees them
    assert [c.__qualname__ for c in found if not issubclass(c, FinflowsError)] == []


# Longer than MAX_LINES on purpose, and why: nothing else is.
LONG_ON_PURPOSE = {
    # the hot loop of a 1 GB acquirer statement: one frame keeps every lookup a local (the card
    # benchmark's ratio to a bare COPY rests on it); each record type's checks are its own functions
    "finflows/formats/card_statement.py:read_statement": "hot loop",
}
MAX_LINES = 52  # "about fifty" lines of body, docstring not counted


def test_functions_stay_short_enough_to_read_at_once():
    """A function that reads in one screen: its body, without its docstring, at most MAX_LINES
    (the length lint the project keeps, since ruff has no line-count rule)."""
    long = {}
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.body[0]
                doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                start = first.end_lineno + 1 if doc and len(node.body) > 1 else first.lineno
                lines = node.end_lineno - start + 1
                name = f"{path.relative_to(ROOT / 'plugins')}:{node.name}"
                if lines > MAX_LINES and name not in LONG_ON_PURPOSE:
                    long[name] = lines
    assert not long, f"functions longer than {MAX_LINES} lines: {long}"


# a state's name, then a comparison with a string written there: `status == "uploaded"`,
# `o["outcome"] in ("applied", ...)`; every state is compared with its enum's members instead
_STATE_LITERAL = re.compile(
    r"""\b(status|outcome|approval|appr|retry|decision|circuit|transition|state|event)\b("\]|'\]|\))?"""
    r"""\s*(==|!=|not in|in)\s*[\(\{\[]?\s*["'][A-Za-z_]+["']"""
)


def test_no_state_is_compared_with_a_string_of_its_own():
    """Issue #42: a status, outcome, approval, retry, decision, circuit or event is compared only
    with its enum (``finflows.flows.banking.states``, ``files.ControlStatus``/``FileEvent``, each
    flow's ``Status``), so a renamed state cannot leave a comparison that is silently never true."""
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "plugins" / "finflows").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _STATE_LITERAL.search(line) and not line.lstrip().startswith("#")
    ]
    assert not found, "compare with the enum's member:\n" + "\n".join(found)


def test_the_state_pattern_finds_what_it_is_for():
    for line in ('if b.status == "uploaded":', 'x = [o for o in d if o["outcome"] in ("applied", "seen")]',
                 "if state != 'closed':", 'elif approval not in ("rejected",):'):  # fmt: skip
        assert _STATE_LITERAL.search(line), line
    for line in ("if b.status == BatchStatus.UPLOADED:", 'log.info("status == %s", s)', 'name = "status"'):
        assert not _STATE_LITERAL.search(line), line


def test_devstack_modules_import_in_one_direction():
    """Issue #42: no import circle among devstack's modules (function-level imports counted too):
    devstack.cluster and devstack.standalone share devstack.airflow_env instead of each other."""
    root = ROOT / "devstack"
    graph = {
        f"devstack.{p.stem}": {
            m.split(".")[0] + "." + m.split(".")[1] if m.count(".") >= 1 else m
            for m in _imports(p)
            if m.startswith("devstack.") and m.split(".")[1] in {q.stem for q in root.glob("*.py")}
        }
        for p in root.glob("*.py")
        if p.stem != "__main__"
    }

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, set()) - {node}):
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    circles = {" → ".join(c) for m in sorted(graph) if (c := cycle_from(m))}
    assert not circles, "devstack import circle(s):\n" + "\n".join(sorted(circles))


def test_task_bodies_are_found_alike_in_every_flow():
    """Issue #42: a flow's task bodies are its ``tasks.py`` (or, for a flow of several DAGs, its
    ``tasks/`` package, one module per DAG), never a ``*_tasks.py`` beside its logic."""
    odd = sorted(str(p.relative_to(ROOT)) for p in FLOWS.rglob("*_tasks.py"))
    assert not odd, f"name task modules tasks.py or tasks/<dag>.py: {odd}"
    every = {p.name for p in FLOWS.iterdir() if p.is_dir() and not p.name.startswith("__")}
    with_tasks = {p.name for p in FLOWS.iterdir() if (p / "tasks.py").exists() or (p / "tasks").is_dir()}
    assert every == with_tasks, f"flows without tasks.py or tasks/: {sorted(every - with_tasks)}"
