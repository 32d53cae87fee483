"""The import rules of ARCHITECTURE.md §2, read from the source with ast (no import runs).

- `rivya/` (the API client, errors, SSE parser, signing) imports nothing else of the project:
  it could be lifted out as a library.
- The apps import each other one way only: no two apps import each other, directly or through
  other apps (the console ↔ webhooks cycle is gone: webhooks ends jobs through console code,
  so the console reaches webhook data only through model relations).
- Nothing imports the sandbox: the console reaches it over HTTP, exactly as it reaches rivya.ai.

Project-wide modules at the package root (settings, urls, visibility, outbound, …) are not apps:
they are the places every app may share, and settings and urls wire all apps together.
"""

import ast
from pathlib import Path

from django.conf import settings

PACKAGE = "rivya_dashboard"
ROOT = Path(settings.BASE_DIR) / PACKAGE
# Modules inside an app that every app may use, and why; each must import nothing of the
# project (checked below), so using one can never close a cycle.
SHARED = {
    "rivya_dashboard.vault.crypto": "the keyring every app seals its secrets at rest with",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path) -> set[str]:
    """Every project module path imports, wherever the import sits (functions, TYPE_CHECKING)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # "from rivya_dashboard import visibility" imports the module visibility;
            # "from rivya_dashboard.console.models import Generation" the module console.models.
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
    return {module for module in found if module.split(".")[0] == PACKAGE}


def app_of(module: str) -> str | None:
    """The app (a sub-package of the project) a module belongs to; None for root modules."""
    parts = module.split(".")
    if len(parts) < 2 or not (ROOT / parts[1]).is_dir():
        return None
    return parts[1]


def app_imports() -> dict[str, dict[str, set[str]]]:
    """app -> imported app -> the modules that import it."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in ROOT.rglob("*.py"):
        source = app_of(module_name(path))
        if source is None:
            continue
        for module in imported_modules(path):
            target = app_of(module)
            if target is not None and target != source and module not in SHARED:
                graph.setdefault(source, {}).setdefault(target, set()).add(module_name(path))
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk, as the list of apps around it."""
    found, done = [], set()

    def walk(app: str, trail: list[str]) -> None:
        if app in trail:
            found.append([*trail[trail.index(app) :], app])
            return
        if app in done:
            return
        for target in sorted(graph.get(app, {})):
            walk(target, [*trail, app])
        done.add(app)

    for app in sorted(graph):
        walk(app, [])
    return found


def test_it_reads_imports_of_every_form():
    source = ROOT / "webhooks" / "generation_updates.py"
    assert "rivya_dashboard.console.generations" in imported_modules(source)
    assert app_imports()["webhooks"]["console"]
    assert cycles({"a": {"b": set()}, "b": {"c": set()}, "c": {"a": set()}}) == [
        ["a", "b", "c", "a"]
    ]


def test_shared_modules_import_nothing_of_the_project():
    for module in SHARED:
        path = ROOT.parent / (module.replace(".", "/") + ".py")
        assert imported_modules(path) == set(), module


def test_rivya_imports_nothing_of_the_rest_of_the_project():
    outside = {
        f"{module_name(path)} imports {module}"
        for path in (ROOT / "rivya").rglob("*.py")
        for module in imported_modules(path)
        if app_of(module) != "rivya"
    }
    assert outside == set()


def test_no_two_apps_import_each_other():
    graph = app_imports()
    assert cycles(graph) == [], {
        f"{source} -> {target}": sorted(modules)
        for source, targets in graph.items()
        for target, modules in targets.items()
    }


def test_the_console_does_not_import_the_webhooks_app():
    assert "webhooks" not in app_imports().get("console", {})


def test_nothing_imports_the_sandbox():
    importers = {
        source: sorted(modules)
        for source, targets in app_imports().items()
        for target, modules in targets.items()
        if target == "sandbox"
    }
    root_modules = [path for path in ROOT.glob("*.py") if path.name not in ("urls.py",)]
    importers.update(
        {
            module_name(path): ["sandbox"]
            for path in root_modules
            if any(app_of(module) == "sandbox" for module in imported_modules(path))
        }
    )
    assert importers == {}
