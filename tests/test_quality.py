"""The architecture's rules, checked by the real tools: import-linter's layer contracts
(pyproject.toml), mypy --strict and ruff (E, F, B, C90 with complexity 15) over the
package. docs/architecture.md explains the layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_import_layers_are_kept() -> None:
    run = subprocess.run([str(BIN / "lint-imports")], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "BROKEN" not in run.stdout


def test_mypy_strict_is_clean() -> None:
    run = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-5000:]


def test_ruff_is_clean() -> None:
    run = subprocess.run([str(BIN / "ruff"), "check", "vcyclectl"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]


def test_no_module_is_long_without_saying_why() -> None:
    """A module over 400 lines says in its docstring why it is one module."""
    import ast

    long = []
    for path in sorted((REPO / "vcyclectl").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= 400:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "one module" not in doc:
            long.append(f"{path.relative_to(REPO)} ({text.count(chr(10))} lines)")
    assert not long, long
