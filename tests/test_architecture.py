"""The package's layers, as docs/architecture.md draws them, hold in the tree: every import points down.

The page's table says which folders make each layer and which layers it may import; this test reads
that table and every import of every module (function-level ones included), so a module that imports
upwards, a folder the page does not name, or a page that names a folder that is gone all fail here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "airflow_provider_fgs"
PAGE = ROOT / "docs" / "architecture.md"
ROOT_MAY_IMPORT: dict[str, set[str]] = {"__init__": set(), "compat": set(), "get_provider_info": {"hooks"}}
"""What each module at the package root may import of the package (the page's prose says why)."""
ROOT_MODULES = {f"{name}.py" for name in ROOT_MAY_IMPORT}
HTTP_LIBRARIES = {"requests", "httpx", "aiohttp", "urllib3"}
MAX_LINES = 600
pytestmark = pytest.mark.airflow_independent


def _layers() -> dict[str, tuple[list[str], set[str]]]:
    """``layer -> (its folders, the layers and root modules it may import)``, from the page's table."""
    layers: dict[str, tuple[list[str], set[str]]] = {}
    for row in re.findall(r"^\| (\w+) \| (`[^|]+`) \| [^|]+ \| ([^|]+) \|$", PAGE.read_text(), re.M):
        name, folders, may_import = row
        allowed = {word.strip("` ") for word in may_import.replace(" (", ",").split(",")}
        layers[name] = (re.findall(r"`(\w+)/`", folders), {word for word in allowed if word.isidentifier()})
    return layers


LAYERS = _layers()
LAYER_OF_FOLDER = {folder: layer for layer, (folders, _) in LAYERS.items() for folder in folders}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imported(path: Path, *, runtime_only: bool = False) -> list[tuple[int, str]]:
    """
    ``(line, module)`` of every import in ``path`` (``from m import n`` gives ``m`` and ``m.n``), relative
    imports resolved; with ``runtime_only``, not those under ``if TYPE_CHECKING:``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    parts = path.with_suffix("").parts
    package = parts[parts.index("airflow_provider_fgs") : -1]
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for statement in node.body
        for child in ast.walk(statement)
    }
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if runtime_only and id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def _place(module: str) -> str | None:
    """The layer (or root module) an imported ``airflow_provider_fgs`` module belongs to."""
    parts = module.split(".")
    if parts[0] != "airflow_provider_fgs":
        return None
    if len(parts) > 1 and parts[1] in LAYER_OF_FOLDER:
        return LAYER_OF_FOLDER[parts[1]]
    if len(parts) > 1 and f"{parts[1]}.py" in ROOT_MODULES:
        return parts[1]
    return "__init__"  # the package itself, or a name it defines (``__version__``)


def test_the_page_names_every_folder_of_the_package_and_nothing_else() -> None:
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert set(LAYER_OF_FOLDER) == folders
    assert list(LAYERS) == ["protocol", "client", "hooks", "triggers", "operators", "ui", "emulator"]


def test_the_package_root_holds_only_the_modules_that_belong_to_the_whole_package() -> None:
    assert {path.name for path in PACKAGE.glob("*.py")} == ROOT_MODULES


@pytest.mark.parametrize("path", _modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_every_import_points_down(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1:
        own = relative.stem
        allowed = ROOT_MAY_IMPORT[own]
    else:
        own = LAYER_OF_FOLDER[relative.parts[0]]
        allowed = LAYERS[own][1] | {own, "__init__"}
    wrong = [
        f"line {line}: {module}"
        for line, module in _imported(path)
        if (place := _place(module)) is not None and place not in allowed
    ]
    assert not wrong, f"{relative} ({own}) imports above its layer: {wrong}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "protocol").glob("*.py")), ids=lambda path: path.name)
def test_protocol_imports_no_transport_and_of_airflow_only_its_exception_types(path: Path) -> None:
    exceptions = ("airflow.exceptions", "airflow.sdk.exceptions", "airflow_provider_fgs.compat")
    for line, module in _imported(path):
        top = module.split(".")[0]
        assert top not in HTTP_LIBRARIES, f"{path.name}:{line} imports {module}"
        if top == "airflow" or module.startswith("airflow_provider_fgs.compat"):
            source, _, name = module.rpartition(".")
            taken_from_exceptions = source in exceptions and name.endswith(("Exception", "Error"))
            assert module in exceptions or taken_from_exceptions, f"{path.name}:{line} imports {module}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "client").glob("*.py")), ids=lambda path: path.name)
def test_only_the_transport_modules_of_the_client_import_an_http_library(path: Path) -> None:
    transports = {"sync_transport.py", "async_transport.py"}
    imported = {module.split(".")[0] for _, module in _imported(path, runtime_only=True)} & HTTP_LIBRARIES
    assert not imported or path.name in transports, f"{path.name} imports {sorted(imported)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_is_longer_than_the_limit(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_checks_see_an_import_that_points_up(tmp_path: Path) -> None:
    """The import reader finds what the checks judge: an upward import inside a function too."""
    sample = PACKAGE / "client" / "settings.py"
    upward = "def f():\n    from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook\n"
    tree_copy = tmp_path / "airflow_provider_fgs" / "client" / "sample.py"
    tree_copy.parent.mkdir(parents=True)
    tree_copy.write_text(sample.read_text() + "\n\n" + upward)
    modules = [module for _, module in _imported(tree_copy)]
    assert "airflow_provider_fgs.hooks.functiongraph.FunctionGraphHook" in modules
    assert _place("airflow_provider_fgs.hooks.functiongraph") == "hooks" not in LAYERS["client"][1]
