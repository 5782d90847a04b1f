"""`serve`'s gunicorn settings: where workers keep their liveness file."""

from __future__ import annotations

from pathlib import Path

from vcyclectl.feedback.server import ServeOptions, gunicorn_settings, liveness_tmp_dir


def test_liveness_file_goes_to_a_writable_tmpfs_else_gunicorns_default(tmp_path: Path
                                                                      ) -> None:
    assert liveness_tmp_dir(str(tmp_path)) == str(tmp_path)
    assert liveness_tmp_dir(str(tmp_path / "missing")) is None
    (tmp_path / "file").write_text("")
    assert liveness_tmp_dir(str(tmp_path / "file")) is None


def test_settings_name_the_liveness_dir() -> None:
    settings = gunicorn_settings(ServeOptions())
    assert settings["worker_tmp_dir"] == liveness_tmp_dir()
