"""The package's shape, as the contributor docs state it: no import cycle within the package (an
import inside a function counts: it only hides the cycle), and every exception class in errors.py."""
import ast
import os

import heliosdb_flink_crypto

PKG = os.path.dirname(os.path.abspath(heliosdb_flink_crypto.__file__))
NAME = "heliosdb_flink_crypto"
#: Private control-flow exceptions of the KMS stand-ins (test servers, not the product).
STAND_IN_EXCEPTIONS = {"testing/azure.py": {"_KvError"}, "testing/gcp.py": {"_Abort"}}


def _modules() -> dict[str, str]:
    out = {}
    for folder, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), PKG)[:-3].replace(os.sep, ".")
                name = NAME if rel == "__init__" else f"{NAME}.{rel}".removesuffix(".__init__")
                out[name] = os.path.join(folder, f)
    return out


def _imports(name: str, path: str, modules) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its code."""
    base = name.split(".") if path.endswith("__init__.py") else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = base[:len(base) - node.level + 1] if node.level else []
            mod = ".".join(parent + (node.module.split(".") if node.module else []))
            found.update(f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names)
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_within_the_package():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    assert "heliosdb_flink_crypto.errors" in graph["heliosdb_flink_crypto.crypto"]  # the graph is read
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_exception_lives_in_errors_py():
    stray = []
    for name, path in _modules().items():
        rel = os.path.relpath(path, PKG)
        if rel == "errors.py":
            continue
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ClassDef) and any(
                    (getattr(b, "id", None) or getattr(b, "attr", "")).endswith(("Error", "Exception"))
                    for b in node.bases) and node.name not in STAND_IN_EXCEPTIONS.get(rel, ()):
                stray.append(f"{rel}: {node.name}")
    assert stray == []


#: The size a module or class should stay under so that a person can hold it in their head
#: (README, Code map); split by responsibility when one grows past it.
MAX_LINES = 300


def _too_long(paths) -> list[str]:
    return [f"{os.path.relpath(p, os.path.dirname(PKG))}: {n} lines" for p in paths
            if (n := sum(1 for _ in open(p, encoding="utf-8"))) > MAX_LINES]


def test_no_python_module_and_no_java_class_over_300_lines():
    java = os.path.join(os.path.dirname(PKG), "java-shim", "src", "main", "java")
    sources = [p for p in _modules().values()]
    sources += [os.path.join(d, f) for d, _, fs in os.walk(java) for f in fs if f.endswith(".java")]
    assert any(p.endswith("PythonBridge.java") for p in sources)  # the Java sources are read
    assert _too_long(sources) == []


def test_the_size_check_finds_a_long_file(tmp_path):
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "ok.py").write_text("x = 1\n" * MAX_LINES)
    assert [s.rsplit(": ", 1)[1] for s in _too_long([tmp_path / "long.py", tmp_path / "ok.py"])] == ["301 lines"]
