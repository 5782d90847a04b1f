"""Start a real OpenStack control plane on 127.0.0.1 for the driver tests and benchmark.

Keystone, Glance, Placement and Nova (Debian 12's OpenStack Zed packages, installed by
``install.sh``) with a private MariaDB and RabbitMQ, all on free loopback ports under one
base directory, and Nova's ``fake.FakeDriver`` as the only compute host. Neutron is the
small responder in ``neutron_responder.py``. Nothing is shared with the system's own
services: every daemon gets its own data directory, and every process is in its own
process group so ``stop()`` ends exactly what ``start()`` began.

The services run under Debian's ``/usr/bin/python3`` (where the packages live); this
module runs in the test venv and uses its openstacksdk only as an admin client for the
catalog, flavors and the test image.

Command line (for trying it by hand)::

    python tests/clouds/openstack/os_controlplane.py [BASE_DIR]

starts everything, prints the admin credentials as JSON (also written to
BASE_DIR/control-plane.json) and runs until interrupted. Pointing the tests at it with
``VCYCLECTL_OS_CONTROL_PLANE=BASE_DIR/control-plane.json`` skips their own start-up
(for iterating on the tests; CI always starts a fresh one).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = os.environ.get("VCYCLECTL_OS_PYTHON", "/usr/bin/python3")
INI_DIR = Path(os.environ.get("VCYCLECTL_OS_INI_DIR", "/var/lib/vcyclectl-openstack-test/ini"))
REGION = "RegionOne"
#: A second region whose compute endpoint is a proxy that can lose responses (tests of
#: create idempotency); every other service points at the same servers as RegionOne.
LOSSY_REGION = "LossyRegion"
COMPUTE_HOST = "vcyclectl-fake-compute"

#: Flavors the tests use. "x.huge" asks for more vCPUs than the fake compute host has, so
#: the scheduler finds no valid host and the server goes to ERROR for real.
FLAVORS = {"m1.tiny": (1, 512, 1), "m1.small": (2, 2048, 10), "m1.large": (4, 8192, 20),
           "x.huge": (4096, 1024, 1)}
IMAGE_NAME = "vcyclectl-test-image"


class ControlPlaneError(RuntimeError):
    """The control plane did not come up; the message carries the failing log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], timeout: float,
             proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ControlPlaneError(f"{what} exited with {proc.returncode}\n{tail(log)}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise ControlPlaneError(f"{what} not ready after {timeout:.0f} s\n{tail(log)}")


def tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()
    return f"--- last lines of {log} ---\n" + "\n".join(text[-lines:])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500


class LossyProxy:
    """An HTTP reverse proxy in front of nova-api that can lose one response.

    When armed, the next ``POST .../servers`` is forwarded to Nova (so the server IS
    created) but the client's connection is closed before the response is sent: exactly a
    response lost in the network, for testing that create is idempotent on the name.
    It is armed and read over HTTP (``POST /__lossy/arm``, ``GET /__lossy/lost``), so a
    test process can use a control plane started by another process.

    It can also add latency, as a real cloud's API has over a WAN (benchmarks/
    bench_latency_openstack.py): ``POST /__lossy/latency?create_ms=300&read_ms=100`` makes
    it wait that long before forwarding each create (``POST .../servers``) and each other
    request; ``create_ms=0&read_ms=0`` turns it off again.
    """

    def __init__(self, upstream_port: int, port: int) -> None:
        self.upstream_port = upstream_port
        self.port = port
        self.lose_next_create = threading.Event()
        self.lost = 0
        self.drop_after_loss = 0  # requests to fail after the lost one (its look-up)
        self.dropping = 0
        self.create_delay = self.read_delay = 0.0  # seconds, see `latency` in the docstring
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _read_message(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
        """One HTTP/1.1 message (head + Content-Length body) and the bytes after it."""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            rest += chunk
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        buf = b""
        try:
            while True:
                got = self._read_message(client, buf)
                if got is None:
                    return
                request, buf = got
                first = request.split(b"\r\n", 1)[0].decode()
                method, path = first.split(" ")[:2]
                if path.startswith("/__lossy/"):
                    if path.startswith("/__lossy/arm"):
                        self.drop_after_loss = int(path.partition("then_drop=")[2] or 0)
                        self.lose_next_create.set()
                    elif path.startswith("/__lossy/latency"):
                        query = dict(part.split("=", 1) for part in
                                     path.partition("?")[2].split("&") if "=" in part)
                        self.create_delay = float(query.get("create_ms", 0)) / 1000
                        self.read_delay = float(query.get("read_ms", 0)) / 1000
                    body = str(self.lost).encode()
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                                   % (len(body), body))
                    continue
                if self.dropping > 0:
                    self.dropping -= 1
                    return  # the look-up after a lost response fails too
                creating = method == "POST" and path.rstrip("/").endswith("/servers")
                delay = self.create_delay if creating else self.read_delay
                if delay:
                    time.sleep(delay)
                upstream.sendall(request)
                response = self._read_message(upstream, b"")
                if response is None:
                    return
                if (method == "POST" and path.rstrip("/").endswith("/servers")
                        and self.lose_next_create.is_set()):
                    self.lose_next_create.clear()
                    self.lost += 1
                    self.dropping = self.drop_after_loss
                    return  # Nova created it; the client never hears so
                client.sendall(response[0])
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._sock.close()


@dataclass
class ControlPlane:
    """A running control plane; `admin` credentials can do anything in it."""

    base: Path
    ports: dict[str, int]
    admin_password: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    lossy: LossyProxy | None = None
    image_id: str = ""

    def lose_next_create(self, then_drop: int = 0) -> int:
        """Arm LossyRegion's proxy; returns how many responses it has lost so far.

        `then_drop` requests after the lost one are refused too (the driver's look-up).
        """
        return self._lossy_call("POST", f"arm?then_drop={then_drop}")

    def set_latency(self, create_ms: float, read_ms: float) -> None:
        """LossyRegion's compute endpoint waits this long before each create and each
        other request it forwards (0, 0: none, the default)."""
        self._lossy_call("POST", f"latency?create_ms={create_ms:g}&read_ms={read_ms:g}")

    def lost_responses(self) -> int:
        return self._lossy_call("GET", "lost")

    def _lossy_call(self, method: str, what: str) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{self.ports['lossy']}/__lossy/{what}",
                                         method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.read())

    def to_json(self) -> dict[str, Any]:
        return {"base": str(self.base), "ports": self.ports, "admin_password": self.admin_password,
                "image_id": self.image_id}

    @classmethod
    def attach(cls, description: dict[str, Any]) -> "ControlPlane":
        """A handle on a control plane another process started (it will not be stopped)."""
        return cls(base=Path(description["base"]), ports=description["ports"],
                   admin_password=description["admin_password"], image_id=description["image_id"])

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['keystone']}/v3"

    def url(self, service: str) -> str:
        suffix = {"keystone": "/v3", "nova": "/v2.1", "placement": "", "glance": "",
                  "neutron": ""}[service]
        return f"http://127.0.0.1:{self.ports[service]}{suffix}"

    def admin_auth(self) -> dict[str, str]:
        return {"auth_url": self.auth_url, "username": "admin", "password": self.admin_password,
                "project_name": "admin", "user_domain_name": "Default",
                "project_domain_name": "Default"}

    def admin_connection(self) -> Any:
        import openstack

        return openstack.connect(auth=self.admin_auth(), region_name=REGION,
                                 identity_interface="public", compute_api_version="2")

    def log(self, name: str) -> Path:
        return self.base / "log" / f"{name}.log"

    def logs_tail(self) -> str:
        return "\n".join(tail(self.log(name), 15) for name in self.processes)

    # -- processes --------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.log(name).open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, cwd=self.base,
                                start_new_session=True)
        log.close()
        self.processes[name] = proc
        return proc

    def run(self, name: str, argv: list[str], env: dict[str, str] | None = None,
            timeout: float = 180) -> None:
        """A one-shot set-up command; its output goes to the log of `name`."""
        with self.log(name).open("ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            result = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                                    cwd=self.base, timeout=timeout)
        if result.returncode != 0:
            raise ControlPlaneError(f"{' '.join(argv[:4])} failed ({result.returncode})\n"
                                    f"{tail(self.log(name))}")

    def stop(self) -> None:
        """End every process started, by process group, TERM then KILL."""
        if self.lossy is not None:
            self.lossy.close()
        for proc in self.processes.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def python_call(target: str, *args: str) -> list[str]:
    """argv running `module:function` with sys.argv = [module, *args] under the system python."""
    module, _, func = target.partition(":")
    code = (f"import sys; sys.argv = [{module!r}] + sys.argv[1:]; "
            f"from {module} import {func}; sys.exit({func}())")
    return [SYSTEM_PYTHON, "-c", code, *args]


def _auth_section(cp: ControlPlane, name: str) -> str:
    return textwrap.dedent(f"""
        [{name}]
        auth_type = password
        auth_url = {cp.auth_url}
        username = admin
        password = {cp.admin_password}
        project_name = admin
        user_domain_name = Default
        project_domain_name = Default
        region_name = {REGION}
        """)


def _authtoken(cp: ControlPlane) -> str:
    return _auth_section(cp, "keystone_authtoken") + f"www_authenticate_uri = {cp.auth_url}\n"


def write_configs(cp: ControlPlane) -> None:
    db = f"mysql+pymysql://root@127.0.0.1:{cp.ports['mysql']}"
    base = cp.base
    (base / "keystone").mkdir()
    (base / "keystone/keystone.conf").write_text(textwrap.dedent(f"""
        [DEFAULT]
        log_file = {cp.log('keystone')}
        [database]
        connection = {db}/keystone
        [token]
        provider = fernet
        [fernet_tokens]
        key_repository = {base}/keystone/fernet-keys
        [fernet_receipts]
        key_repository = {base}/keystone/fernet-keys
        [credential]
        key_repository = {base}/keystone/credential-keys
        [identity]
        password_hash_rounds = 4
        """))
    (base / "placement").mkdir()
    (base / "placement/placement.conf").write_text(textwrap.dedent(f"""
        [DEFAULT]
        log_file = {cp.log('placement')}
        [api]
        auth_strategy = keystone
        [placement_database]
        connection = {db}/placement
        """) + _authtoken(cp))
    (base / "glance").mkdir()
    for sub in ("images", "staging", "tasks"):
        (base / "glance" / sub).mkdir()
    (base / "glance/glance-api.conf").write_text(textwrap.dedent(f"""
        [DEFAULT]
        bind_host = 127.0.0.1
        bind_port = {cp.ports['glance']}
        workers = 1
        log_file = {cp.log('glance-api')}
        enabled_backends = fs:file
        [glance_store]
        default_backend = fs
        [fs]
        filesystem_store_datadir = {base}/glance/images/
        [os_glance_staging_store]
        filesystem_store_datadir = {base}/glance/staging/
        [os_glance_tasks_store]
        filesystem_store_datadir = {base}/glance/tasks/
        [database]
        connection = {db}/glance
        [paste_deploy]
        flavor = keystone
        config_file = {INI_DIR}/glance/glance-api-paste.ini
        [oslo_concurrency]
        lock_path = {base}/glance/lock
        """) + _authtoken(cp))
    (base / "nova").mkdir()
    (base / "nova/instances").mkdir()
    (base / "nova/nova.conf").write_text(textwrap.dedent(f"""
        [DEFAULT]
        transport_url = rabbit://guest:guest@127.0.0.1:{cp.ports['rabbit']}/
        compute_driver = fake.FakeDriver
        host = {COMPUTE_HOST}
        my_ip = 127.0.0.1
        state_path = {base}/nova
        instances_path = {base}/nova/instances
        enabled_apis = osapi_compute
        osapi_compute_listen = 127.0.0.1
        osapi_compute_listen_port = {cp.ports['nova']}
        osapi_compute_workers = 2
        use_rootwrap_daemon = false
        [api]
        auth_strategy = keystone
        max_limit = 1000
        [wsgi]
        api_paste_config = {INI_DIR}/nova/api-paste.ini
        [api_database]
        connection = {db}/nova_api?charset=utf8
        [database]
        connection = {db}/nova?charset=utf8
        [conductor]
        workers = 1
        [scheduler]
        workers = 1
        discover_hosts_in_cells_interval = 2
        [quota]
        instances = -1
        cores = -1
        ram = -1
        [oslo_concurrency]
        lock_path = {base}/nova/lock
        [oslo_messaging_notifications]
        driver = noop
        [vnc]
        enabled = false
        [neutron]
        default_floating_pool = none
        """) + _auth_section(cp, "placement")
        + _auth_section(cp, "neutron") + _auth_section(cp, "glance").replace(
            "auth_type = password", "# glance calls use the user's token")
        + _authtoken(cp))


def start_databases(cp: ControlPlane) -> None:
    base = cp.base
    (base / "mysql").mkdir()
    cp.run("mariadb-install", ["mariadb-install-db", "--no-defaults", f"--datadir={base}/mysql",
                               "--user=root", "--auth-root-authentication-method=normal",
                               "--skip-test-db", "--skip-name-resolve"])
    mysql = cp.spawn("mariadb", [
        "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={base}/mysql", "--user=root",
        f"--socket={base}/mysql.sock", f"--pid-file={base}/mysql.pid",
        f"--port={cp.ports['mysql']}", "--bind-address=127.0.0.1", "--skip-grant-tables",
        "--skip-name-resolve", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0", "--innodb-buffer-pool-size=256M", "--max-connections=1000",
        "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"])
    rabbit_dir = base / "rabbitmq"
    rabbit_dir.mkdir()
    (rabbit_dir / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{cp.ports['rabbit']}\n"
        "log.file.level = warning\n")
    (rabbit_dir / "enabled_plugins").write_text("[].\n")
    rabbit_env = {
        "HOME": str(rabbit_dir),
        "RABBITMQ_NODENAME": f"vcyclectl{cp.ports['rabbit']}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(cp.ports["rabbit"]),
        "RABBITMQ_DIST_PORT": str(cp.ports["rabbit_dist"]),
        "RABBITMQ_CONFIG_FILE": str(rabbit_dir / "rabbitmq"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(rabbit_dir / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(rabbit_dir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(rabbit_dir / "log"),
        "RABBITMQ_PID_FILE": str(rabbit_dir / "rabbit.pid"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(rabbit_dir / "advanced.config"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }
    cp.spawn("rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=rabbit_env)
    wait_for("mariadb", lambda: port_open(cp.ports["mysql"]), 120, mysql, cp.log("mariadb"))
    databases = ["keystone", "glance", "placement", "nova_api", "nova", "nova_cell0"]
    cp.run("mariadb-client", ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{cp.ports['mysql']}",
                              "-uroot", "-e", "; ".join(f"CREATE DATABASE {d}" for d in databases)])


def sync_databases(cp: ControlPlane) -> None:
    """Each service's schema, in parallel (they are independent and each takes seconds)."""
    base = cp.base
    ks = {"OS_KEYSTONE_CONFIG_DIR": str(base / "keystone")}
    kconf = ["--config-file", str(base / "keystone/keystone.conf")]
    nconf = ["--config-file", str(base / "nova/nova.conf")]
    db = f"mysql+pymysql://root@127.0.0.1:{cp.ports['mysql']}"
    rabbit = f"rabbit://guest:guest@127.0.0.1:{cp.ports['rabbit']}/"

    def keystone() -> None:
        manage = "keystone.cmd.manage:main"
        cp.run("keystone-manage", python_call(manage, *kconf, "db_sync"), ks)
        for what in ("fernet_setup", "credential_setup"):
            cp.run("keystone-manage", python_call(manage, *kconf, what, "--keystone-user", "root",
                                                  "--keystone-group", "root"), ks)
        cp.run("keystone-manage", python_call(
            manage, *kconf, "bootstrap", "--bootstrap-password", cp.admin_password,
            "--bootstrap-admin-url", cp.auth_url, "--bootstrap-public-url", cp.auth_url,
            "--bootstrap-internal-url", cp.auth_url, "--bootstrap-region-id", REGION), ks)

    def glance() -> None:
        cp.run("glance-manage", python_call(
            "glance.cmd.manage:main", "--config-file", str(base / "glance/glance-api.conf"),
            "db_sync"))

    def placement() -> None:
        cp.run("placement-manage", python_call(
            "placement.cmd.manage:main", "--config-file", str(base / "placement/placement.conf"),
            "db", "sync"))

    def nova() -> None:
        manage = "nova.cmd.manage:main"
        cp.run("nova-manage", python_call(manage, *nconf, "api_db", "sync"))
        cp.run("nova-manage", python_call(manage, *nconf, "cell_v2", "map_cell0",
                                          "--database_connection", f"{db}/nova_cell0?charset=utf8"))
        cp.run("nova-manage", python_call(manage, *nconf, "cell_v2", "create_cell", "--name",
                                          "cell1", "--transport-url", rabbit,
                                          "--database_connection", f"{db}/nova?charset=utf8"))
        cp.run("nova-manage", python_call(manage, *nconf, "db", "sync"))

    run_parallel({"keystone": keystone, "glance": glance, "placement": placement, "nova": nova})


def run_parallel(jobs: dict[str, Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - reported below, with the log tail
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,), name=name) for name, job in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def register_catalog(cp: ControlPlane) -> None:
    conn = cp.admin_connection()
    ident = conn.identity
    ident.create_region(id=LOSSY_REGION)
    endpoints = {"compute": ("nova", "nova"), "image": ("glance", "glance"),
                 "placement": ("placement", "placement"), "network": ("neutron", "neutron")}
    for service_type, (name, key) in endpoints.items():
        service = ident.create_service(name=name, type=service_type)
        for region in (REGION, LOSSY_REGION):
            url = cp.url(key)
            if region == LOSSY_REGION and key == "nova":
                url = f"http://127.0.0.1:{cp.ports['lossy']}/v2.1"
            for interface in ("public", "internal"):
                ident.create_endpoint(service_id=service.id, interface=interface, url=url,
                                      region_id=region)
    # The identity service in the second region too, so a client pinned to it finds Keystone.
    identity = next(iter(ident.services(type="identity")))
    ident.create_endpoint(service_id=identity.id, interface="public", url=cp.auth_url,
                          region_id=LOSSY_REGION)
    for role in ("member", "reader"):
        if not list(ident.roles(name=role)):
            ident.create_role(name=role)


def start_services(cp: ControlPlane) -> None:
    base = cp.base
    ks = cp.spawn("keystone", [SYSTEM_PYTHON, str(HERE / "wsgi_serve.py"), str(cp.ports["keystone"]),
                               "keystone.server.wsgi:initialize_public_application"],
                  {"OS_KEYSTONE_CONFIG_DIR": str(base / "keystone")})
    wait_for("keystone", lambda: http_ok(cp.auth_url), 120, ks, cp.log("keystone"))
    cp.lossy = LossyProxy(cp.ports["nova"], cp.ports["lossy"])
    register_catalog(cp)
    nconf = ["--config-file", str(base / "nova/nova.conf")]
    pl = cp.spawn("placement", [SYSTEM_PYTHON, str(HERE / "wsgi_serve.py"),
                                str(cp.ports["placement"]), "placement.wsgi:init_application"],
                  {"OS_PLACEMENT_CONFIG_DIR": str(base / "placement")})
    gl = cp.spawn("glance-api", python_call("glance.cmd.api:main", "--config-file",
                                            str(base / "glance/glance-api.conf")))
    wait_for("rabbitmq", lambda: port_open(cp.ports["rabbit"]), 180, cp.processes["rabbitmq"],
             cp.log("rabbitmq"))
    api = cp.spawn("nova-api", python_call("nova.cmd.api:main", *nconf))
    cp.spawn("nova-conductor", python_call("nova.cmd.conductor:main", *nconf))
    cp.spawn("nova-scheduler", python_call("nova.cmd.scheduler:main", *nconf))
    wait_for("placement", lambda: http_ok(cp.url("placement")), 120, pl, cp.log("placement"))
    cp.spawn("nova-compute", python_call("nova.cmd.compute:main", *nconf))
    wait_for("glance-api", lambda: http_ok(cp.url("glance")), 120, gl, cp.log("glance-api"))
    wait_for("nova-api", lambda: http_ok(cp.url("nova")), 180, api, cp.log("nova-api"))


def seed(cp: ControlPlane, timeout: float = 180) -> None:
    """Flavors, one tiny image, and a booted-and-deleted server to prove the path works."""
    conn = cp.admin_connection()
    for name, (vcpus, ram, disk) in FLAVORS.items():
        conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)
    image = conn.image.create_image(name=IMAGE_NAME, disk_format="raw", container_format="bare",
                                    data=b"\0" * 1024, visibility="public")
    cp.image_id = image.id

    def compute_mapped() -> bool:
        return any(h.name == COMPUTE_HOST for h in conn.compute.hypervisors())

    wait_for("nova-compute registration (hypervisor listed)", compute_mapped, timeout,
             cp.processes["nova-compute"], cp.log("nova-compute"))
    # A listed hypervisor may not be mapped to its cell yet (the scheduler maps it every
    # 2 s): until then a boot fails with "No valid host". Retry until one goes ACTIVE.
    from openstack import exceptions as sdk_exc

    flavor_id = conn.compute.find_flavor("m1.tiny", ignore_missing=False).id
    deadline = time.monotonic() + timeout
    while True:
        server = conn.compute.create_server(name="vcyclectl-smoke", image_id=image.id,
                                            flavor_id=flavor_id, networks="none")
        try:
            server = conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"],
                                                  wait=timeout, interval=0.5)
        except sdk_exc.ResourceFailure:
            pass
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=60, interval=0.5)
        if server.status == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise ControlPlaneError("the smoke-test server never went ACTIVE\n" + cp.logs_tail())
        time.sleep(1)


def start(base: Path | None = None) -> ControlPlane:
    """Start everything; raises ControlPlaneError (with log tails) if any piece fails."""
    if not Path(SYSTEM_PYTHON).exists() or not (INI_DIR / "nova/api-paste.ini").exists():
        raise ControlPlaneError(
            "OpenStack test packages are not installed: run "
            "`sudo sh tests/clouds/openstack/install.sh` first")
    base = Path(base or tempfile.mkdtemp(prefix="vcyclectl-openstack-"))
    (base / "log").mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("mysql", "rabbit", "rabbit_dist", "keystone",
                                            "glance", "placement", "nova", "neutron", "lossy")}
    cp = ControlPlane(base=base, ports=ports, admin_password=secrets.token_hex(12))
    try:
        write_configs(cp)
        cp.spawn("neutron", [SYSTEM_PYTHON, str(HERE / "neutron_responder.py"),
                             "--port", str(ports["neutron"])])
        start_databases(cp)
        sync_databases(cp)
        start_services(cp)
        try:
            seed(cp)
        except ControlPlaneError:
            raise
        except Exception as exc:
            raise ControlPlaneError(f"seeding failed: {exc!r}\n{cp.logs_tail()}") from exc
    except BaseException:
        cp.stop()
        raise
    return cp


@contextlib.contextmanager
def running(base: Path | None = None) -> Iterator[ControlPlane]:
    cp = start(base)
    try:
        yield cp
    finally:
        cp.stop()


def main() -> None:
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if base is not None and base.exists():
        shutil.rmtree(base)
    began = time.monotonic()
    with running(base) as cp:
        description = {**cp.to_json(), "auth": cp.admin_auth(), "region": REGION,
                       "seconds": round(time.monotonic() - began, 1)}
        (cp.base / "control-plane.json").write_text(json.dumps(description, indent=2))
        print(json.dumps(description, indent=2), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
