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


def _module_level_imports(path: Path) -> set[str]:
    """What importing the module imports at once: its top-level import statements (``if
    TYPE_CHECKING`` blocks and imports inside functions are not run on import)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def _import_graph() -> dict[str, set[str]]:
    """finflows module → the finflows modules (and the third-party roots) importing it loads directly."""
    modules = {}
    for p in (ROOT / "plugins" / "finflows").rglob("*.py"):
        parts = list(p.relative_to(ROOT / "plugins").with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {}
    for name, path in modules.items():
        direct = set()
        for m in _module_level_imports(path):
            if not m.startswith("finflows"):
                direct.add(m.split(".")[0])
                continue
            parts = m.split(".")  # a module imports its parent packages too
            direct |= {".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules}
        graph[name] = direct - {name}
    return graph


def _loads(graph: dict[str, set[str]], start: str) -> dict[str, list[str]]:
    """Everything importing ``start`` loads, each with the chain that loads it."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        node = todo.pop()
        for nxt in sorted(graph.get(node, set())):
            if nxt not in chains:
                chains[nxt] = [*chains[node], nxt]
                todo.append(nxt)
    return chains


def _group_of(module: str) -> str | None:
    import finflows

    parts = module.split(".")
    if len(parts) < 2:
        return None
    if parts[1] == "flows":
        return "flows"
    for group in ("MODEL", "IO", "GLUE"):
        if parts[1] in getattr(finflows, group):
            return group
    return "none"


def test_every_top_level_module_is_in_one_group():
    import finflows

    groups = [*finflows.MODEL, *finflows.IO, *finflows.GLUE]
    assert len(groups) == len(set(groups)), "a module is in two groups"
    top = ROOT / "plugins" / "finflows"
    here = {p.stem for p in top.glob("*.py")} | {p.name for p in top.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    assert here - {"__init__", "flows"} == set(groups), (
        "put each module of finflows/ in one group (finflows/__init__.py)"
    )


def test_each_group_imports_only_what_its_rule_allows_all_the_way_down():
    """Issue #42: finflows/__init__.py states the groups' rules; here they are held on what
    importing a module loads, followed through every module it imports (a back-arrow through a
    third module is found, not only a module's own import lines)."""
    allowed = {"MODEL": {"MODEL"}, "IO": {"MODEL", "IO"}, "GLUE": {"MODEL", "IO", "GLUE"}}
    graph = _import_graph()
    broken = []
    for module in sorted(graph):
        group = _group_of(module)
        if group not in allowed:
            continue
        for reached, chain in _loads(graph, module).items():
            other = _group_of(reached) if reached.startswith("finflows.") else None
            if other is not None and other not in allowed[group]:
                broken.append(f"{group} {module} loads {other} {reached}: {' → '.join(chain)}")
            if group in ("MODEL", "IO") and reached == "airflow":
                broken.append(f"{group} {module} loads Airflow: {' → '.join(chain)}")
    assert not broken, "\n".join(broken)


def test_the_group_rule_finds_a_back_arrow_through_a_third_module():
    """The check above on a made-up graph: model → io only through a third model module."""
    graph = {"finflows.pci": {"finflows.seams"}, "finflows.seams": {"finflows.files"}, "finflows.files": set()}
    chain = _loads(graph, "finflows.pci")["finflows.files"]
    assert chain == ["finflows.pci", "finflows.seams", "finflows.files"]
    assert (_group_of("finflows.pci"), _group_of("finflows.files")) == ("MODEL", "IO")


def test_every_table_a_spec_declares_is_made_by_a_migration():
    """Issue #42: a flow declares the tables it writes in its spec (lineage reads them there); each
    is created by a migration in include/sql/ (the example's by its own schema.sql)."""
    sql = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "include" / "sql").glob("*.sql"))
    sql += (ROOT / "examples" / "inbox_flow" / "schema.sql").read_text(encoding="utf-8")
    made = set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+\.[a-z_]+)", sql, re.I))
    declared = {t for f in flowspec.flows() for t in f.tables}
    assert declared and declared - made == set()
    assert all(f.tables for f in flowspec.flows()), "every flow names the tables it writes"
