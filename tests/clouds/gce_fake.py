"""A fake of the Compute Engine REST API (compute/v1), served over HTTP on loopback.

No emulator of Compute Engine exists, so the GCE driver is tested against this fake with the
real `google-cloud-compute` client pointed at it (`api_endpoint` + anonymous or
service-account credentials). To keep the fake from drifting into a permissive copy, every
request body and query is checked against the `compute.v1` discovery document that
google-api-python-client ships, and rejected the way the API does (HTTP 400, the API's
error shape) for unknown fields, wrong types, bad enum values, bad names and label values and
non-UUID `requestId`s. Every response the fake sends is checked against the same document
(a fake that answers with fields the API does not have fails the test that caused it).

What it runs: instances (insert/get/delete/list/aggregatedList) whose status moves
PROVISIONING -> STAGING -> RUNNING over configurable (sub-second) delays; zone operations
(get/wait) that finish after a delay; global aggregated operations (for
`compute.instances.preempted`); machine types. Lists paginate with `nextPageToken`, honour
`maxResults` and `filter` (the AIP-160 subset the API documents: `field = value`, `!=`, `:`,
parentheses, AND/OR, and the regex `eq`/`ne` forms).

What it can be told: a per-region CPU quota (inserts beyond it finish with QUOTA_EXCEEDED),
exhausted zones (ZONE_RESOURCE_POOL_EXHAUSTED), the next N requests failing with a status,
unreachable zones, revoked credentials (401), projects the caller may not use (403),
pre-empting a SPOT instance, and a VM halting itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import googleapiclient  # type: ignore[import-untyped]

DISCOVERY_PATH = (Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
                  / "compute.v1.json")
PREFIX = "/compute/v1/"
BASE_URL = "https://www.googleapis.com/compute/v1/"

_DISCOVERY: dict[str, Any] | None = None


def discovery() -> dict[str, Any]:
    """The compute.v1 discovery document (loaded once per process)."""
    global _DISCOVERY
    if _DISCOVERY is None:
        _DISCOVERY = json.loads(DISCOVERY_PATH.read_text())
    return _DISCOVERY


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


class ApiError(Exception):
    """An error response in the API's shape: {"error": {code, message, errors, status}}."""

    STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
              404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
              500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

    def __init__(self, code: int, message: str, reason: str, *, field_path: str | None = None,
                 extra: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.field_path = field_path
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {"message": self.message, "domain": "global",
                                "reason": self.reason}
        item.update(self.extra)
        error: dict[str, Any] = {"code": self.code, "message": self.message, "errors": [item],
                                 "status": self.STATUS.get(self.code, "UNKNOWN")}
        if self.field_path is not None:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                 "fieldViolations": [{"field": self.field_path,
                                                      "description": self.message}]}]
        return {"error": error}


def _invalid(message: str, path: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid", field_path=path)


# -- schema checking against the discovery document ----------------------------------------

_INT_RANGES = {"int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1),
               "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1)}
_TYPE_NAMES = {"int32": "TYPE_INT32", "uint32": "TYPE_UINT32", "int64": "TYPE_INT64",
               "uint64": "TYPE_UINT64", "boolean": "TYPE_BOOL", "string": "TYPE_STRING",
               "double": "TYPE_DOUBLE", "float": "TYPE_FLOAT"}


def check(schema: dict[str, Any], value: Any, path: str, *, request: bool = True) -> None:
    """Check `value` against a discovery schema the way the API's JSON parser does.

    Raises ApiError(400) for what the API rejects: unknown names, wrong JSON types, enum
    values it does not know, numbers out of range. (`request=False` checks our own
    responses with the same rules.)
    """
    if "$ref" in schema:
        schema = discovery()["schemas"][schema["$ref"]]
    kind = schema.get("type")
    fmt = schema.get("format")
    shown = path or "resource"

    def bad_value() -> ApiError:
        tname = _TYPE_NAMES.get(fmt or kind or "", "TYPE_MESSAGE")
        return _invalid(f"Invalid value at '{_snake(shown)}' ({tname}), "
                        f"{json.dumps(value)}", _snake(shown))

    if kind == "object" and fmt != "google.protobuf.Any":
        if not isinstance(value, dict):
            raise _invalid(f"Invalid value at '{_snake(shown)}' (TYPE_MESSAGE), "
                           f"{json.dumps(value)}", _snake(shown))
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if props is not None and key in props:
                check(props[key], item, f"{path}.{key}" if path else key, request=request)
            elif additional is not None:
                check(additional, item, f"{path}[{key!r}]" if path else key, request=request)
            else:
                raise _invalid(f"Invalid JSON payload received. Unknown name \"{key}\" at "
                               f"'{_snake(shown)}': Cannot find field.", _snake(shown))
        return
    if kind == "array":
        if not isinstance(value, list):
            raise bad_value()
        for i, item in enumerate(value):
            check(schema["items"], item, f"{path}[{i}]", request=request)
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            raise bad_value()
        return
    if kind == "integer" or (kind == "string" and fmt in ("int64", "uint64")):
        number: Any = value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int):
            raise bad_value()
        low, high = _INT_RANGES.get(fmt or "int32", _INT_RANGES["int64"])
        if not low <= number <= high:
            raise bad_value()
        return
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_value()
        return
    if kind == "string":
        if not isinstance(value, str):
            raise bad_value()
        if "enum" in schema and value not in schema["enum"]:
            raise _invalid(f"Invalid value at '{_snake(shown)}' "
                           f"(type.googleapis.com/google.cloud.compute.v1.{_snake(shown)}), "
                           f"\"{value}\"", _snake(shown))
        return
    # "any" and google.protobuf.Any accept any JSON value.


def check_query(method: dict[str, Any], query: dict[str, list[str]]) -> dict[str, str]:
    """Query parameters: known to the method (or global), right type, pattern, minimum."""
    params = method.get("parameters", {})
    global_params = discovery()["parameters"]
    out: dict[str, str] = {}
    for name, values in query.items():
        value = values[-1]
        spec = params.get(name) or global_params.get(name)
        if spec is None or spec.get("location", "query") != "query":
            raise _invalid(f"Invalid JSON payload received. Unknown name \"{name}\": "
                           "Cannot bind query parameter. Field '" + name
                           + "' could not be found in request message.", name)
        if spec.get("type") == "integer":
            if not re.fullmatch(r"[0-9]+", value):
                raise _invalid(f"Invalid value for field '{name}': '{value}'. "
                               "Must be an integer.", name)
        if spec.get("type") == "boolean" and value not in ("true", "false"):
            raise _invalid(f"Invalid value for field '{name}': '{value}'.", name)
        if "pattern" in spec and not re.fullmatch(spec["pattern"], value):
            raise _invalid(f"Invalid value for field '{name}': '{value}'. Must match "
                           f"the pattern '{spec['pattern']}'.", name)
        out[name] = value
    return out


# -- filters ------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(\(|\)|!=|=|:|"(?:[^"\\]|\\.)*"|\'[^\']*\'|[^\s()=!:"\']+)')


def parse_filter(text: str) -> Callable[[dict[str, Any]], bool]:
    """Compile a list filter into a predicate over a resource, or raise ApiError(400)."""
    tokens = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _invalid(f"Invalid value for field 'filter': '{text}'. Invalid list filter "
                           "expression.", "filter")
        tokens.append(m.group(1))
        pos = m.end()
    if not tokens:
        return lambda resource: True
    index = 0

    def fail() -> ApiError:
        return _invalid(f"Invalid value for field 'filter': '{text}'. Invalid list filter "
                        "expression.", "filter")

    def peek() -> str | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> str:
        nonlocal index
        if index >= len(tokens):
            raise fail()
        index += 1
        return tokens[index - 1]

    def literal(tok: str) -> str:
        if tok[:1] in "\"'" and tok[-1:] == tok[:1] and len(tok) >= 2:
            return tok[1:-1].replace('\\"', '"')
        return tok

    def comparison() -> Callable[[dict[str, Any]], bool]:
        path = take()
        if not re.fullmatch(r"[A-Za-z_][\w.-]*", path):
            raise fail()
        op = take()
        if op not in ("=", "!=", ":", "eq", "ne"):
            raise fail()
        value = literal(take())

        def get(resource: dict[str, Any]) -> Any:
            current: Any = resource
            for part in path.split("."):
                if not isinstance(current, dict) or part not in current:
                    return None
                current = current[part]
            return current

        def as_text(found: Any) -> str | None:
            if found is None:
                return None
            if isinstance(found, bool):
                return "true" if found else "false"
            return str(found)

        if op == ":":
            if value == "*":
                return lambda r: get(r) is not None
            return lambda r: value in (as_text(get(r)) or "")
        if op in ("eq", "ne"):
            pattern = re.compile(value)
            want = op == "eq"
            return lambda r: bool(pattern.fullmatch(as_text(get(r)) or "")) == want
        if op == "=":
            return lambda r: as_text(get(r)) == value
        return lambda r: as_text(get(r)) != value

    def term() -> Callable[[dict[str, Any]], bool]:
        if peek() == "(":
            take()
            inner = disjunction()
            if take() != ")":
                raise fail()
            return inner
        return comparison()

    def conjunction() -> Callable[[dict[str, Any]], bool]:
        parts = [term()]
        while peek() not in (None, ")", "OR"):
            if peek() == "AND":
                take()
            parts.append(term())
        return lambda r: all(p(r) for p in parts)

    def disjunction() -> Callable[[dict[str, Any]], bool]:
        parts = [conjunction()]
        while peek() == "OR":
            take()
            parts.append(conjunction())
        return lambda r: any(p(r) for p in parts)

    predicate = disjunction()
    if index != len(tokens):
        raise fail()
    return predicate


# -- the fake cloud -----------------------------------------------------------------------

def _now_text(at: float | None = None) -> str:
    moment = datetime.fromtimestamp(at if at is not None else time.time(),
                                    tz=timezone(timedelta(hours=-8)))
    return moment.isoformat(timespec="milliseconds")


_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")

DEFAULT_MACHINE_TYPES = {"e2-standard-2": (2, 8192), "e2-standard-4": (4, 16384),
                         "e2-standard-8": (8, 32768), "n2-standard-16": (16, 65536)}


@dataclass
class Operation:
    data: dict[str, Any]
    done_at: float
    effect: Callable[[], None] | None = None

    @property
    def zone(self) -> str:
        return str(self.data["zone"]).rsplit("/", 1)[-1]


@dataclass
class Instance:
    data: dict[str, Any]
    created: float
    status: str | None = None  # set once something other than booting decides it

    @property
    def zone(self) -> str:
        return str(self.data["zone"]).rsplit("/", 1)[-1]


@dataclass
class FakeCompute:
    """The fake Compute API. `start()` serves it; attributes below steer it from tests."""

    project: str = "vcyclectl-test"
    zones: tuple[str, ...] = ("europe-west4-a", "europe-west4-b", "europe-west4-c")
    provisioning_seconds: float = 0.05
    staging_seconds: float = 0.05
    operation_seconds: float = 0.03
    wait_max_seconds: float = 2.0
    machine_types: dict[str, tuple[int, int]] = field(
        default_factory=lambda: dict(DEFAULT_MACHINE_TYPES))
    images: set[str] = field(default_factory=lambda: {
        "projects/cos-cloud/global/images/family/cos-stable",
        "projects/vcyclectl-test/global/images/cernvm4",
        "projects/vcyclectl-test/global/images/family/workers"})
    cpu_quota: int | None = None           # per region, vCPUs of all instances
    exhausted_zones: set[str] = field(default_factory=set)
    unreachable_zones: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)           # tokens or key emails -> 401
    denied_projects: set[str] = field(default_factory=set)   # -> 403
    require_auth: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._instances: dict[tuple[str, str], Instance] = {}
        self._operations: dict[str, Operation] = {}
        self._by_request_id: dict[str, str] = {}
        self._failures: list[tuple[int, str, str | None, int]] = []
        self.calls: list[tuple[str, str]] = []      # (method id, path), for counting
        self.bodies: list[dict[str, Any]] = []      # insert bodies as received
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = self._build_routes()

    # -- serving ---------------------------------------------------------------------

    def start(self) -> "FakeCompute":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake.handle(self.command, self.path, raw,
                                           self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True,
                                        name="fake-compute")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- steering from tests ---------------------------------------------------------

    def fail_next(self, count: int, status: int = 503, reason: str = "backendError",
                  method: str | None = None) -> None:
        """The next `count` requests (of `method`, e.g. 'compute.instances.insert') fail."""
        with self._lock:
            self._failures.append((status, reason, method, count))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def forget_request_ids(self) -> None:
        """Operations expire on the real API; then only the name protects a retry."""
        with self._lock:
            self._by_request_id.clear()

    def count(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, _ in self.calls if method is None or m == method)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def instance(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            self._tick()
            for (_, n), inst in self._instances.items():
                if n == name:
                    return self._render(inst)
        return None

    def instance_names(self) -> list[str]:
        with self._lock:
            self._tick()
            return sorted(n for _, n in self._instances)

    def remove(self, name: str) -> None:
        """Someone deleted the VM behind vcyclectl's back (console, another tool)."""
        with self._lock:
            for key in [k for k in self._instances if k[1] == name]:
                del self._instances[key]

    def halt(self, name: str) -> None:
        """The VM shut itself down (its payload finished): TERMINATED, no preemption."""
        with self._lock:
            inst = self._find(name)
            inst.status = "TERMINATED"
            inst.data["lastStopTimestamp"] = _now_text()

    def preempt(self, name: str) -> None:
        """GCE reclaims a SPOT VM: a compute.instances.preempted operation, then the VM
        stops (termination action STOP) or is deleted (DELETE)."""
        with self._lock:
            inst = self._find(name)
            scheduling = inst.data.get("scheduling", {})
            if scheduling.get("provisioningModel") != "SPOT" and not scheduling.get(
                    "preemptible"):
                raise ValueError(f"{name} is not a SPOT VM")
            op = self._new_operation("compute.instances.preempted", inst, user="system")
            op.data.update(status="DONE", progress=100, endTime=_now_text())
            op.data["statusMessage"] = "Instance was preempted."
            self._operations[op.data["name"]] = op
            inst.status = "TERMINATED"
            inst.data["lastStopTimestamp"] = _now_text()
            if scheduling.get("instanceTerminationAction") == "DELETE":
                del self._instances[(inst.zone, name)]

    def add_instances(self, count: int, labels: dict[str, str], *, zone_cycle: bool = True,
                      prefix: str = "seeded", machine_type: str = "e2-standard-2") -> None:
        """Seed running instances directly (benchmarks of listing), as insert would."""
        with self._lock:
            for i in range(count):
                zone = self.zones[i % len(self.zones)] if zone_cycle else self.zones[0]
                name = f"{prefix}-{i:05d}"
                body: dict[str, Any] = {"name": name,
                        "machineType": f"zones/{zone}/machineTypes/{machine_type}",
                        "labels": dict(labels),
                        "disks": [{"boot": True, "initializeParams": {
                            "sourceImage": "projects/cos-cloud/global/images/family/"
                                           "cos-stable"}}],
                        "networkInterfaces": [{"network": "global/networks/default"}]}
                inst = self._make_instance(self.project, zone, body)
                inst.created -= 3600
                self._instances[(zone, name)] = inst

    # -- request handling ------------------------------------------------------------

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], str, dict[str, Any]]]:
        wanted = {
            "instances": ["insert", "get", "delete", "list", "aggregatedList"],
            "zoneOperations": ["get", "wait"],
            "globalOperations": ["aggregatedList"],
            "machineTypes": ["get", "list"],
        }
        routes = []
        for resource, methods in wanted.items():
            for name in methods:
                method = discovery()["resources"][resource]["methods"][name]
                regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)",
                                     re.escape(method["flatPath"])) + "$"
                routes.append((method["httpMethod"], re.compile(regex), method["id"], method))
        return routes

    def handle(self, verb: str, target: str, raw: bytes,
               authorization: str | None) -> tuple[int, dict[str, Any]]:
        try:
            return 200, self._dispatch(verb, target, raw, authorization)
        except ApiError as exc:
            return exc.code, exc.body()

    def _dispatch(self, verb: str, target: str, raw: bytes,
                  authorization: str | None) -> dict[str, Any]:
        parts = urlsplit(target)
        if not parts.path.startswith(PREFIX):
            raise ApiError(404, f"Not Found: {parts.path}", "notFound")
        path = parts.path[len(PREFIX):]
        for http_method, regex, method_id, method in self._routes:
            m = regex.match(path)
            if m and http_method == verb:
                break
        else:
            raise ApiError(404, f"The requested URL {parts.path} was not found on this "
                                "server.", "notFound")
        with self._lock:
            self.calls.append((method_id, path))
        self._authorize(authorization, m.group("project"), method_id)
        with self._lock:
            for i, (status, reason, only, left) in enumerate(self._failures):
                if only is None or only == method_id:
                    if left <= 1:
                        del self._failures[i]
                    else:
                        self._failures[i] = (status, reason, only, left - 1)
                    raise ApiError(status, f"Injected failure ({reason}).", reason)
        query = check_query(method, parse_qs(parts.query, keep_blank_values=True))
        for name, spec in method.get("parameters", {}).items():
            if spec.get("location") == "path" and "pattern" in spec and not re.fullmatch(
                    spec["pattern"], m.group(name)):
                raise _invalid(f"Invalid value for field '{name}': '{m.group(name)}'. "
                               f"Must match the pattern '{spec['pattern']}'.", name)
        body: Any = None
        if "request" in method:
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                raise _invalid("Invalid JSON payload received. Unexpected token.")
            if body is None:
                raise _invalid("Required field 'resource' not specified", "resource")
            check(method["request"], body, "")
        handler = getattr(self, "_" + method_id.replace(".", "_"))
        with self._lock:
            self._tick()
            if method_id != "compute.zoneOperations.wait":
                result = handler(m.groupdict(), query, body)
            else:
                result = None
        if result is None:  # wait blocks without holding the lock
            result = self._compute_zoneOperations_wait(m.groupdict(), query, body)
        check(method["response"], result, "", request=False)
        return dict(result)

    def _authorize(self, authorization: str | None, project: str, method_id: str) -> None:
        identity = None
        if authorization:
            token = authorization.split(" ", 1)[-1]
            identity = token
            pieces = token.split(".")
            if len(pieces) == 3:  # a self-signed JWT from a service-account key
                try:
                    payload = json.loads(base64.urlsafe_b64decode(pieces[1] + "=="))
                    identity = payload.get("iss") or payload.get("sub") or token
                except ValueError:
                    pass
        if (identity is None and self.require_auth) or identity in self.revoked:
            raise ApiError(401, "Request had invalid authentication credentials. Expected "
                                "OAuth 2 access token, login cookie or other valid "
                                "authentication credential.", "authError",
                           extra={"location": "Authorization", "locationType": "header"})
        if project in self.denied_projects:
            action = method_id.replace("aggregatedList", "list")
            raise ApiError(403, f"Required '{action}' permission for 'projects/{project}'",
                           "forbidden")
        if project != self.project:
            raise ApiError(404, f"The resource 'projects/{project}' was not found",
                           "notFound")

    def _tick(self) -> None:
        now = time.monotonic()
        for op in self._operations.values():
            if op.data["status"] != "DONE" and now >= op.done_at:
                if op.effect is not None:
                    op.effect()
                    op.effect = None
                op.data.update(status="DONE", progress=100, endTime=_now_text())

    def _find(self, name: str) -> Instance:
        for (_, n), inst in self._instances.items():
            if n == name:
                return inst
        raise KeyError(name)

    def _zone_check(self, zone: str) -> None:
        if zone not in self.zones:
            raise ApiError(404, f"The resource 'projects/{self.project}/zones/{zone}' was "
                                "not found", "notFound")

    def _render(self, inst: Instance) -> dict[str, Any]:
        data = dict(inst.data)
        status = inst.status
        if status is None:
            age = time.monotonic() - inst.created
            if age < self.provisioning_seconds:
                status = "PROVISIONING"
            elif age < self.provisioning_seconds + self.staging_seconds:
                status = "STAGING"
            else:
                status = "RUNNING"
                data.setdefault("lastStartTimestamp", data["creationTimestamp"])
        data["status"] = status
        return data

    def _new_operation(self, kind: str, inst: Instance, *, user: str = "anonymous",
                       error: dict[str, Any] | None = None, http_status: int | None = None
                       ) -> Operation:
        number = str(random.randrange(10**18, 10**19))  # the client wants numeric ids
        name = f"operation-{int(time.time() * 1000)}-{uuid.uuid4().hex[:13]}"
        zone_url = f"{BASE_URL}projects/{self.project}/zones/{inst.zone}"
        data: dict[str, Any] = {
            "kind": "compute#operation", "id": number, "name": name, "zone": zone_url,
            "operationType": kind.rsplit(".", 1)[-1] if kind.startswith("compute.instances.")
            and kind != "compute.instances.preempted" else kind,
            "targetLink": f"{zone_url}/instances/{inst.data['name']}",
            "targetId": inst.data["id"], "status": "RUNNING", "user": user, "progress": 0,
            "insertTime": _now_text(), "startTime": _now_text(),
            "selfLink": f"{zone_url}/operations/{name}"}
        if error is not None:
            data["error"] = error
            data["httpErrorStatusCode"] = http_status
            data["httpErrorMessage"] = {403: "FORBIDDEN", 503: "SERVICE UNAVAILABLE"}.get(
                http_status or 0, "ERROR")
        return Operation(data=data, done_at=time.monotonic() + self.operation_seconds)

    def _make_instance(self, project: str, zone: str, body: dict[str, Any]) -> Instance:
        name = body["name"]
        number = str(random.randrange(10**18, 10**19))
        zone_url = f"{BASE_URL}projects/{project}/zones/{zone}"
        data = json.loads(json.dumps(body))
        data.update(kind="compute#instance", id=number, creationTimestamp=_now_text(),
                    zone=zone_url, selfLink=f"{zone_url}/instances/{name}",
                    cpuPlatform="Intel Broadwell",
                    fingerprint=base64.b64encode(hashlib.sha1(number.encode()).digest()[:8])
                    .decode(),
                    labelFingerprint="42WmSpB8rSM=")
        data["machineType"] = f"{zone_url}/machineTypes/" + body["machineType"].rsplit(
            "/", 1)[-1]
        for i, nic in enumerate(data.get("networkInterfaces", [])):
            nic.setdefault("name", f"nic{i}")
            nic["networkIP"] = f"10.164.{random.randrange(256)}.{random.randrange(2, 255)}"
            nic["network"] = BASE_URL + f"projects/{project}/global/networks/" + str(
                nic.get("network", "default")).rsplit("/", 1)[-1]
            for ac in nic.get("accessConfigs", []):
                ac["natIP"] = f"34.90.{random.randrange(256)}.{random.randrange(2, 255)}"
                ac.setdefault("kind", "compute#accessConfig")
        for i, disk in enumerate(data.get("disks", [])):
            disk.pop("initializeParams", None)  # input only
            disk.update(kind="compute#attachedDisk", index=i, mode="READ_WRITE",
                        source=f"{zone_url}/disks/{name}", deviceName="persistent-disk-0",
                        type=disk.get("type", "PERSISTENT"))
        return Instance(data=data, created=time.monotonic())

    def _region_cpus(self, region: str) -> int:
        total = 0
        for (zone, _), inst in self._instances.items():
            if zone.rsplit("-", 1)[0] == region and self._render(inst)["status"] not in (
                    "TERMINATED", "STOPPED"):
                mt = inst.data["machineType"].rsplit("/", 1)[-1]
                total += self.machine_types.get(mt, (0, 0))[0]
        return total

    # -- methods (called with the lock held) -----------------------------------------

    def _compute_instances_insert(self, path: dict[str, str], query: dict[str, str],
                                  body: dict[str, Any]) -> dict[str, Any]:
        zone = path["zone"]
        self._zone_check(zone)
        request_id = query.get("requestId")
        if request_id is not None:
            try:
                if uuid.UUID(request_id).int == 0:
                    raise ValueError
            except ValueError:
                raise _invalid(f"Invalid value for field 'requestId': '{request_id}'. "
                               "The request id must be a valid UUID with the exception that "
                               "zero UUID is not supported "
                               "(00000000-0000-0000-0000-000000000000).", "requestId")
            key = f"{path['project']}/{request_id}"
            if key in self._by_request_id:
                return self._operations[self._by_request_id[key]].data
        self._validate_instance(zone, body)
        name = body["name"]
        if (zone, name) in self._instances:
            raise ApiError(409, f"The resource 'projects/{path['project']}/zones/{zone}/"
                                f"instances/{name}' already exists", "alreadyExists")
        mt = body["machineType"].rsplit("/", 1)[-1]
        inst = self._make_instance(path["project"], zone, body)
        region = zone.rsplit("-", 1)[0]
        error = status = None
        if zone in self.exhausted_zones:
            error = {"errors": [{
                "code": "ZONE_RESOURCE_POOL_EXHAUSTED",
                "message": f"The zone 'projects/{self.project}/zones/{zone}' does not have "
                           "enough resources available to fulfill the request.  Try a "
                           "different zone, or try again later."}]}
            status = 503
        elif self.cpu_quota is not None and (
                self._region_cpus(region) + self.machine_types[mt][0] > self.cpu_quota):
            error = {"errors": [{
                "code": "QUOTA_EXCEEDED",
                "message": f"Quota 'CPUS' exceeded.  Limit: {float(self.cpu_quota)} in "
                           f"region {region}."}]}
            status = 403
        op = self._new_operation("compute.instances.insert", inst, error=error,
                                 http_status=status)
        if error is None:
            self._instances[(zone, name)] = inst
            self.bodies.append(body)
        else:
            op.data["targetId"] = inst.data["id"]
        self._operations[op.data["name"]] = op
        if request_id is not None:
            self._by_request_id[f"{path['project']}/{request_id}"] = op.data["name"]
        return dict(op.data)

    def _validate_instance(self, zone: str, body: dict[str, Any]) -> None:
        """What instances.insert requires beyond the schema (as the API reports it)."""
        name = body.get("name")
        if not name:
            raise _invalid("Required field 'resource.name' not specified", "resource.name")
        if not _NAME.fullmatch(name):
            raise _invalid(f"Invalid value for field 'resource.name': '{name}'. Must be a "
                           "match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
                           "resource.name")
        mt = str(body.get("machineType", "")).rsplit("/", 1)[-1]
        if not body.get("machineType"):
            raise _invalid("Required field 'resource.machineType' not specified",
                           "resource.machineType")
        if mt not in self.machine_types:
            raise _invalid(f"Invalid value for field 'resource.machineType': "
                           f"'{body['machineType']}'. Machine type with name '{mt}' does not "
                           f"exist in zone '{zone}'.", "resource.machineType")
        labels = body.get("labels", {})
        if len(labels) > 64:
            raise _invalid("Invalid value for field 'resource.labels': too many labels.",
                           "resource.labels")
        for key, value in labels.items():
            if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
                raise _invalid(f"Invalid value for field 'resource.labels': '{key}': "
                               f"'{value}'. Label keys and values can only contain lowercase "
                               "letters, numeric characters, underscores and dashes.",
                               "resource.labels")
        disks = body.get("disks") or []
        boots = [d for d in disks if d.get("boot")]
        if len(boots) != 1:
            raise _invalid("Invalid value for field 'resource.disks': ''. Exactly one boot "
                           "disk must be specified.", "resource.disks")
        image = boots[0].get("initializeParams", {}).get("sourceImage")
        if not image and not boots[0].get("source"):
            raise _invalid("Invalid value for field 'resource.disks[0].initializeParams': "
                           "''. Source image or source disk must be specified.",
                           "resource.disks[0].initializeParams")
        if image:
            short = re.sub(r"^https?://[^/]+/compute/v1/", "", image)
            if short.startswith("global/"):
                short = f"projects/{self.project}/{short}"
            if short not in self.images:
                raise ApiError(404, f"The resource '{short}' was not found", "notFound")
        if not body.get("networkInterfaces"):
            raise _invalid("Invalid value for field 'resource.networkInterfaces': ''. At "
                           "least one network interface is required.",
                           "resource.networkInterfaces")
        scheduling = body.get("scheduling", {})
        if scheduling.get("provisioningModel") == "SPOT" and scheduling.get(
                "automaticRestart"):
            raise _invalid("Invalid value for field 'resource.scheduling.automaticRestart': "
                           "'true'. Spot VMs cannot be configured with automatic restart.",
                           "resource.scheduling.automaticRestart")
        if scheduling.get("instanceTerminationAction") and scheduling.get(
                "provisioningModel") != "SPOT":
            raise _invalid("Invalid value for field "
                           "'resource.scheduling.instanceTerminationAction': the termination "
                           "action applies to Spot VMs only.",
                           "resource.scheduling.instanceTerminationAction")
        for i, item in enumerate(body.get("metadata", {}).get("items", [])):
            if not re.fullmatch(r"[a-zA-Z0-9-_]{1,128}", item.get("key", "")):
                raise _invalid(f"Invalid value for field 'resource.metadata.items[{i}].key'",
                               f"resource.metadata.items[{i}].key")

    def _compute_instances_get(self, path: dict[str, str], query: dict[str, str],
                               body: Any) -> dict[str, Any]:
        self._zone_check(path["zone"])
        inst = self._instances.get((path["zone"], path["instance"]))
        if inst is None:
            raise self._not_found(path)
        return self._render(inst)

    def _not_found(self, path: dict[str, str]) -> ApiError:
        return ApiError(404, f"The resource 'projects/{path['project']}/zones/{path['zone']}/"
                             f"instances/{path['instance']}' was not found", "notFound")

    def _compute_instances_delete(self, path: dict[str, str], query: dict[str, str],
                                  body: Any) -> dict[str, Any]:
        self._zone_check(path["zone"])
        key = (path["zone"], path["instance"])
        inst = self._instances.get(key)
        if inst is None:
            raise self._not_found(path)
        inst.status = "STOPPING"
        op = self._new_operation("compute.instances.delete", inst)

        def gone() -> None:
            if self._instances.get(key) is inst:
                del self._instances[key]

        op.effect = gone
        self._operations[op.data["name"]] = op
        return dict(op.data)

    def _page(self, items: list[tuple[str, str, dict[str, Any]]], query: dict[str, str],
              collection: str) -> dict[str, Any]:
        """Keyset pagination over (zone, name)-sorted items, grouped by zone scope."""
        limit = int(query.get("maxResults", "500"))
        if limit > 500:
            raise _invalid(f"Invalid value for field 'maxResults': '{limit}'. Must be less "
                           "than or equal to 500", "maxResults")
        limit = limit or 500
        items.sort(key=lambda t: (t[0], t[1]))
        token = query.get("pageToken")
        filter_hash = hashlib.sha1(query.get("filter", "").encode()).hexdigest()[:8]
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                after = (state["z"], state["n"])
                if state["f"] != filter_hash:
                    raise ValueError
            except (ValueError, KeyError):
                raise _invalid(f"Invalid value for field 'pageToken': '{token}'.",
                               "pageToken")
            items = [t for t in items if (t[0], t[1]) > after]
        page, rest = items[:limit], items[limit:]
        scopes: dict[str, list[dict[str, Any]]] = {}
        for zone, _, resource in page:
            scopes.setdefault(zone, []).append(resource)
        out: dict[str, Any] = {}
        for zone in self.zones:
            scope = f"zones/{zone}"
            if zone in self.unreachable_zones:
                out[scope] = {"warning": {"code": "UNREACHABLE",
                                          "message": f"Scope '{scope}' is unreachable.",
                                          "data": [{"key": "scope", "value": scope}]}}
            elif zone in scopes:
                out[scope] = {collection: scopes[zone]}
            else:
                out[scope] = {"warning": {
                    "code": "NO_RESULTS_ON_PAGE",
                    "message": f"There are no results for scope '{scope}' on this page.",
                    "data": [{"key": "scope", "value": scope}]}}
        result: dict[str, Any] = {"items": out}
        if rest:
            last = page[-1]
            result["nextPageToken"] = base64.urlsafe_b64encode(json.dumps(
                {"z": last[0], "n": last[1], "f": filter_hash}).encode()).decode()
        return result

    def _compute_instances_aggregatedList(self, path: dict[str, str], query: dict[str, str],
                                          body: Any) -> dict[str, Any]:
        predicate = parse_filter(query.get("filter", ""))
        rendered = [(zone, name, self._render(inst))
                    for (zone, name), inst in self._instances.items()]
        matching = [t for t in rendered if predicate(t[2])]
        result = self._page(matching, query, "instances")
        if query.get("returnPartialSuccess") == "true" and self.unreachable_zones:
            result["unreachables"] = [f"zones/{z}" for z in sorted(self.unreachable_zones)]
        result.update(kind="compute#instanceAggregatedList",
                      id=f"projects/{path['project']}/aggregated/instances",
                      selfLink=f"{BASE_URL}projects/{path['project']}/aggregated/instances")
        return result

    def _compute_instances_list(self, path: dict[str, str], query: dict[str, str],
                                body: Any) -> dict[str, Any]:
        self._zone_check(path["zone"])
        predicate = parse_filter(query.get("filter", ""))
        items = [self._render(inst) for (zone, _), inst in sorted(self._instances.items())
                 if zone == path["zone"]]
        return {"kind": "compute#instanceList", "items": [i for i in items if predicate(i)],
                "id": f"projects/{path['project']}/zones/{path['zone']}/instances",
                "selfLink": f"{BASE_URL}projects/{path['project']}/zones/{path['zone']}/"
                            "instances"}

    def _compute_zoneOperations_get(self, path: dict[str, str], query: dict[str, str],
                                    body: Any) -> dict[str, Any]:
        op = self._operations.get(path["operation"])
        if op is None or op.zone != path["zone"]:
            raise ApiError(404, f"The resource 'projects/{path['project']}/zones/"
                                f"{path['zone']}/operations/{path['operation']}' was not "
                                "found", "notFound")
        return dict(op.data)

    def _compute_zoneOperations_wait(self, path: dict[str, str], query: dict[str, str],
                                     body: Any) -> dict[str, Any]:
        """Blocks until the operation is DONE or `wait_max_seconds` pass (the API: 2 min)."""
        deadline = time.monotonic() + self.wait_max_seconds
        while True:
            with self._lock:
                self._tick()
                data = self._compute_zoneOperations_get(path, query, body)
                if data["status"] == "DONE" or time.monotonic() >= deadline:
                    return data
            time.sleep(0.005)

    def _compute_globalOperations_aggregatedList(self, path: dict[str, str],
                                                 query: dict[str, str],
                                                 body: Any) -> dict[str, Any]:
        predicate = parse_filter(query.get("filter", ""))
        items = [(op.zone, op.data["name"], dict(op.data)) for op in self._operations.values()]
        result = self._page([t for t in items if predicate(t[2])], query, "operations")
        result.update(kind="compute#operationAggregatedList",
                      id=f"projects/{path['project']}/aggregated/operations",
                      selfLink=f"{BASE_URL}projects/{path['project']}/aggregated/operations")
        return result

    def _machine_type(self, project: str, zone: str, name: str) -> dict[str, Any]:
        cpus, memory = self.machine_types[name]
        return {"kind": "compute#machineType", "name": name, "guestCpus": cpus,
                "memoryMb": memory, "id": str(int(hashlib.sha1(name.encode()).hexdigest()[:12],
                                                  16)),
                "description": f"{cpus} vCPUs, {memory // 1024} GB RAM", "zone": zone,
                "maximumPersistentDisks": 128, "maximumPersistentDisksSizeGb": "263168",
                "isSharedCpu": False, "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
                "selfLink": f"{BASE_URL}projects/{project}/zones/{zone}/machineTypes/{name}"}

    def _compute_machineTypes_get(self, path: dict[str, str], query: dict[str, str],
                                  body: Any) -> dict[str, Any]:
        self._zone_check(path["zone"])
        if path["machineType"] not in self.machine_types:
            raise ApiError(404, f"The resource 'projects/{path['project']}/zones/"
                                f"{path['zone']}/machineTypes/{path['machineType']}' was not "
                                "found", "notFound")
        return self._machine_type(path["project"], path["zone"], path["machineType"])

    def _compute_machineTypes_list(self, path: dict[str, str], query: dict[str, str],
                                   body: Any) -> dict[str, Any]:
        self._zone_check(path["zone"])
        predicate = parse_filter(query.get("filter", ""))
        items = [self._machine_type(path["project"], path["zone"], n)
                 for n in sorted(self.machine_types)]
        return {"kind": "compute#machineTypeList", "items": [i for i in items if predicate(i)],
                "id": f"projects/{path['project']}/zones/{path['zone']}/machineTypes"}
