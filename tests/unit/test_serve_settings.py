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


def test_the_worker_hands_requests_to_a_request_pool_and_notifies_once_a_second() -> None:
    from gunicorn.config import Config  # type: ignore[import-untyped]
    from gunicorn.glogging import Logger  # type: ignore[import-untyped]

    from vcyclectl.feedback.slowclients import NOTIFY_SECONDS
    from vcyclectl.feedback.workerpool import RequestPool

    settings = gunicorn_settings(ServeOptions(threads=3))
    cfg = Config()
    cfg.set("threads", 3)
    worker = settings["worker_class"](0, 1, [], None, 30, cfg, Logger(cfg))
    pool = worker.get_thread_pool()
    assert isinstance(pool, RequestPool) and len(pool._threads) == 3
    worker.tpool = pool
    assert worker.waiting_for_a_thread() == 0
    touched: list[int] = []
    worker.tmp.notify = lambda: touched.append(1)
    now = [100.0]
    worker.clock = lambda: now[0]
    for _ in range(50):
        worker.notify()
        now[0] += NOTIFY_SECONDS / 100
    assert touched == [1]  # the loop turns often; the master's file is touched once
    now[0] = 100.0 + NOTIFY_SECONDS
    worker.notify()
    assert touched == [1, 1]
    worker.tmp.close()


def test_access_fields_are_gunicorns_atoms_computed_alone() -> None:
    import datetime
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from vcyclectl.feedback.server import access_fields

    environ = {"REMOTE_ADDR": "10.1.2.3", "REQUEST_METHOD": "PUT", "RAW_URI": "/m/x?t=1",
               "PATH_INFO": "/machines/s/m/joboutputs/heartbeat", "QUERY_STRING": "t=1",
               "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_AUTHORIZATION": "Bearer " + "a" * 64}
    atoms = Logger(Config()).atoms
    for status, sent, took in (("204 No Content", 0, datetime.timedelta(microseconds=1500)),
                               ("413 Content Too Large", 1234,
                                datetime.timedelta(seconds=2, microseconds=999)),
                               (500, None, datetime.timedelta(0))):
        resp = SimpleNamespace(status=status, sent=sent, headers=[("Content-Length", "0")])
        req = SimpleNamespace(headers=[("AUTHORIZATION", environ["HTTP_AUTHORIZATION"])])
        expected = atoms(resp, req, environ, took)
        got = access_fields(resp, environ, took)
        assert [str(got[k]) for k in ("client", "method", "path", "status", "bytes", "ms")] \
            == [str(expected[a]) for a in ("h", "m", "U", "s", "b", "M")]
        assert not any("Bearer" in str(v) for v in got.values())  # never the token
    assert access_fields(SimpleNamespace(status="204 No Content", sent=7), environ,
                         datetime.timedelta(milliseconds=3))["bytes"] == 7  # JSON numbers
