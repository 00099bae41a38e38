"""The README and docs/ stay true: their Python samples compile, are formatted, import what exists, and
every page is linked from the README."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def python_blocks() -> list[tuple[str, str]]:
    return [
        (f"{page.relative_to(ROOT)}#{number}", block)
        for page in PAGES
        for number, block in enumerate(PYTHON_BLOCK.findall(page.read_text()), start=1)
    ]


BLOCKS = python_blocks()


def test_there_are_samples_to_check() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_sample_compiles_and_its_imports_exist(where: str, code: str) -> None:
    tree = ast.parse(code, filename=where)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    namespace: dict[str, object] = {}
    exec(compile(ast.Module(body=imports, type_ignores=[]), where, "exec"), namespace)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is a test extra")
@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_sample_is_formatted(where: str, code: str, tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(code)
    done = subprocess.run(
        ["ruff", "format", "--diff", "--line-length", "110", str(sample)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"{where} is not in ruff's format:\n{done.stdout}{done.stderr}"


def test_readme_example_builds_the_chain_of_the_example_dag() -> None:
    readme = (ROOT / "README.md").read_text()
    example = PYTHON_BLOCK.findall(readme.split("## Example", 1)[1])[0]
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md#example", "exec"), namespace)
    split, count = namespace["split"], namespace["count"]
    assert [task.task_id for task in split.downstream_list] == ["count_words"]  # type: ignore[attr-defined]
    assert count.function_name == "count_words"  # type: ignore[attr-defined]


def test_every_docs_page_is_linked_from_the_readme_and_every_link_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    links = set(re.findall(r"\]\((docs/[^)#]+)\)", readme))
    pages = {str(page.relative_to(ROOT)) for page in PAGES[1:]}
    assert pages <= links, f"pages not linked from the README: {sorted(pages - links)}"
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert not missing


def test_commands_named_in_the_docs_exist() -> None:
    scripts = {
        path
        for page in PAGES
        for path in re.findall(r"python ((?:bench|example_dags)/[\w/]+\.py)", page.read_text())
    }
    assert scripts
    assert [path for path in scripts if not (ROOT / path).is_file()] == []


def test_every_relative_link_and_image_of_a_docs_page_exists() -> None:
    broken = [
        f"{page.name}: {target}"
        for page in PAGES[1:]
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", page.read_text())
        if not (page.parent / target).exists()
    ]
    assert not broken
