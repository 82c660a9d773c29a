"""The package's folders are its layers: no module imports from a layer above its own, none form a cycle.

The layers, bottom to top, are those of ``docs/architecture.md``; this test reads every module's
imports with ``ast`` (nothing is imported) and fails naming the offending import.
"""

import ast
import re

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "cyclegan_tf"

# Bottom to top. Layers on one rank (training and serving) may not import each other.
LAYERS = {
    "bottom": 0,
    "models": 1,
    "data": 2,
    "inference": 3,
    "export": 4,
    "evaluation": 5,
    "training": 6,
    "serving": 6,
    "tools": 7,
    "cli": 8,
}
BOTTOM_MODULES = (
    "_deprecated",
    "_keras_compat",
    "errors",
    "io",
    "lazy",
    "model_store",
    "options",
    "pixels",
)


def _module_name(path):
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module):
    """The layer of a ``cyclegan_tf`` module; None for the package's own ``__init__``."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    if parts[1] in BOTTOM_MODULES:
        return "bottom"
    if parts[1] not in LAYERS:
        raise AssertionError(f"{module} is in no layer: add it to docs/architecture.md and LAYERS")
    return parts[1]


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _import_run(lines, first, end):
    """The import statement's lines with the imports and comments right above it (its block)."""
    while first > 0 and lines[first - 1].strip().startswith(("import ", "from ", "#")):
        first -= 1
    return lines[first:end]


def _imports(path):
    """``[(imported module, line number, at module level, the source line and the one above)]``."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            # ``from cyclegan_tf.x import y`` imports cyclegan_tf.x.y when y is a module.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        context = "\n".join(_import_run(lines, node.lineno - 1, node.end_lineno))
        for name in names:
            if name == "cyclegan_tf" or name.startswith("cyclegan_tf."):
                found.append((name, node.lineno, id(node) in top_level, context))
    return found


GRAPH = {module: _imports(path) for module, path in MODULES.items()}


def layer_violations(graph):
    """Messages for every import from a layer above (or beside) the importing module's."""
    problems = []
    for module, imports in sorted(graph.items()):
        layer = _layer(module)
        if layer is None:
            continue  # the package's __init__ is the public API over every layer
        for imported, line, _, _ in imports:
            target = _layer(imported)
            if target in (None, layer):
                continue
            if LAYERS[target] >= LAYERS[layer]:
                problems.append(
                    f"{module} (layer {layer}) imports {imported} (layer {target}) at line {line}"
                )
    return problems


def import_cycles(graph):
    """The groups of modules that import each other, directly or through others (Tarjan)."""
    edges = {
        module: sorted({name for name, *_ in imports if name in graph and name != module})
        for module, imports in graph.items()
        if module != "cyclegan_tf"
    }
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_module_sits_in_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_module_imports_from_a_layer_above_its_own():
    assert layer_violations(GRAPH) == []


def test_no_modules_import_each_other_even_through_others():
    assert import_cycles(GRAPH) == []


def test_the_checks_find_an_upward_import_and_a_cycle():
    bad = {
        "cyclegan_tf.models.layers": [("cyclegan_tf.training.trainer", 3, True, "")],
        "cyclegan_tf.training.trainer": [("cyclegan_tf.models.layers", 1, True, "")],
        "cyclegan_tf.serving.rest": [("cyclegan_tf.training.config", 5, True, "")],
    }
    assert layer_violations(bad) == [
        "cyclegan_tf.models.layers (layer models) imports cyclegan_tf.training.trainer "
        "(layer training) at line 3",
        "cyclegan_tf.serving.rest (layer serving) imports cyclegan_tf.training.config "
        "(layer training) at line 5",
    ]
    assert import_cycles(bad) == [["cyclegan_tf.models.layers", "cyclegan_tf.training.trainer"]]


_COMMENT = re.compile(r"#\s*\S")


def test_project_imports_are_at_module_top_or_say_why_not():
    unexplained = [
        f"{module}:{line} imports {imported}"
        for module, imports in sorted(GRAPH.items())
        for imported, line, top_level, context in imports
        if not top_level and not _COMMENT.search(context)
    ]
    assert unexplained == [], (
        "imports inside functions need a comment saying why (keeping --help fast, an optional "
        "dependency)"
    )


def test_the_map_names_every_layer_and_module():
    """docs/architecture.md matches the tree: every folder is a layer there, every module is named."""
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    folders = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert set(LAYERS) - {"bottom"} == folders, "LAYERS and the package's folders differ"
    for folder in sorted(folders):
        assert f"`{folder}/`" in text, f"docs/architecture.md does not describe {folder}/"
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name != "__init__.py":
            assert f"{path.name}`" in text, f"docs/architecture.md does not name {path.name}"
