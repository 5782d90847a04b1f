"""Writing an import's result: the YAML beside its secret files, which never go into it."""

from __future__ import annotations

from pathlib import Path

from vcyclectl.migrate.vcycle import ImportResult


def write_result(result: ImportResult, out_dir: Path, secrets_dir: str = "secrets") -> Path:
    """Write `vcyclectl.yaml` and the secret files (0600, in a 0700 folder) under `out_dir`."""
    import os

    out_dir.mkdir(parents=True, exist_ok=True)
    if result.secrets:
        folder = out_dir / secrets_dir
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        for name, value in result.secrets.items():
            path = folder / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value)
            os.chmod(path, 0o600)
    target = out_dir / "vcyclectl.yaml"
    target.write_text(result.yaml, encoding="utf-8")
    return target
