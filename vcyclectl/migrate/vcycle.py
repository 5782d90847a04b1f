"""`vcyclectl import vcycle`: turn a Vcycle configuration into vcyclectl YAML.

Sites move from Vcycle by running this once and reviewing the result, so the output is
meant to be read: every Vcycle option that has no vcyclectl equivalent, or cannot be carried
over as it was, is kept as a `# vcycle: OPTION = VALUE: not carried over: WHY` comment next
to where it applied. Secrets (passwords, application credential secrets, EC2 keys, and
`user_data_option_*` values whose names look secret) never go into the YAML: they are
written to separate files (mode 0600) that the YAML names, because a YAML file gets copied,
diffed, pasted into tickets, and `config show` must never print them.

Vcycle's files are INI (Python ConfigParser): sections `[space NAME]`,
`[machinetype SPACE NAME]`, `[vacuum_pipe SPACE PREFIX]`; same-named sections merge and a
later value wins, across files read in order (`/etc/vcycle.conf`, then `/etc/vcycle.d/*.conf`).
Option meanings follow Vcycle's `vcycle.conf(5)` and `vcycle/shared.py`; Vcycle keeps a
machinetype's files in `/var/lib/vcycle/spaces/SPACE/machinetypes/MT/files/`, which is where
relative `user_data`, `user_data_file_*` and `root_image` names are resolved (`vcycle_dir`).

It is one module of a little under 500 lines because every section's translation shares the
`Importer`'s bookkeeping (secret files, not-carried-over comments); finding Vcycle's files,
sharing machinetypes between spaces, rendering the YAML and writing the result are apart
(`files`, `share`, `yamlblock`, `output`).
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from vcyclectl.errors import UsageError
from vcyclectl.redact import looks_secret
from vcyclectl.migrate.files import X509_CERT, X509_KEY, VcycleFiles
from vcyclectl.migrate.share import share_machinetypes
from vcyclectl.migrate.yamlblock import Block, render

SPACE_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?")
MACHINETYPE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
#: ##user_data_…## words vcyclectl fills in (userdata.FIXED), plus options.
_KNOWN_PLACEHOLDERS = {"space", "machinetype", "machine_hostname", "manager_version",
                       "manager_hostname", "machinefeatures_url", "jobfeatures_url",
                       "joboutputs_url", "machine_token"}

_MT_NUMBERS: dict[str, tuple[str, type]] = {
    "min_processors": ("min_processors", int),
    "max_processors": ("max_processors", int),
    "processors_limit": ("processors_limit", int),
    "max_starting_processors": ("max_starting_processors", int),
    "target_share": ("target_share", float),
    "hs06_per_processor": ("hs06_per_processor", float),
    "backoff_seconds": ("backoff_seconds", float),
    "fizzle_seconds": ("fizzle_seconds", float),
    "max_wallclock_seconds": ("max_wallclock_seconds", float),
    "heartbeat_seconds": ("heartbeat_seconds", float),
}
_MT_NOT_CARRIED = {
    "log_joboutputs": "vcyclectl keeps every machine's outputs for joboutputs_keep_seconds",
    "log_machineoutputs": "vcyclectl keeps every machine's outputs for joboutputs_keep_seconds",
    "joboutputs_days": "set joboutputs_keep_seconds at the top level (one value for all)",
    "machineoutputs_days": "set joboutputs_keep_seconds at the top level (one value for all)",
    "remote_joboutputs_url": "VMs report to `vcyclectl serve` (feedback_url)",
    "remote_joboutputs_cert": "VMs report to `vcyclectl serve` (feedback_url)",
    "remote_joboutputs_key": "VMs report to `vcyclectl serve` (feedback_url)",
    "mb_per_processor": "memory comes from the flavor",
    "cvmfs_proxy_machinetype": "point a user_data option at a squid machinetype instead "
                               "(examples/machinetypes/squid)",
    "cernvm_signing_dn": "images are uploaded and checked outside vcyclectl",
    "image_signing_dn": "images are uploaded and checked outside vcyclectl",
    "min_wallclock_seconds": "no vcyclectl equivalent",
    "legacy_proxy": "vcyclectl makes RFC 3820 proxies only",
    "machine_model": "every vcyclectl machine is a cloud VM",
    "root_device": "the flavor decides the disks",
    "scratch_device": "the flavor decides the disks",
    "cvmfs_repositories": "vcyclectl does not manage CVMFS on the host",
}
_SPACE_NOT_CARRIED = {
    "gocdb_cert_file": "GOCDB publishing is not part of vcyclectl",
    "gocdb_key_file": "GOCDB publishing is not part of vcyclectl",
    "vacmon_hostport": "VacMon messages are not sent; use `vcyclectl status -o json`",
    "https_port": "set feedback_url to the public URL of `vcyclectl serve`",
    "shutdown_time": "schedule it with `vcyclectl drain SPACE --at TIME` (TIME may be this "
                     "Unix time; machines are told it as MJF shutdowntime at once)",
    "glance_api": "openstacksdk finds the image service in the catalog",
    "os_shutdown_timeout": "not needed: vcyclectl deletes servers itself",
    "usercert": "Keystone X.509 login is not supported: use an application credential",
    "userkey": "Keystone X.509 login is not supported: use an application credential",
    "version": "the SDK negotiates the API version",
    "api_version": "the SDK negotiates the API version",
}
_CLOUDS = {"openstack": "openstack", "ec2": "ec2", "google": "gce", "gce": "gce"}
#: The state_dir written when none is given (marked CHANGE: it must be the shared folder).
DEFAULT_STATE_DIR = "/var/lib/vcyclectl"


@dataclass
class ImportResult:
    """The YAML text, the secret files to write beside it, and what was not carried over."""

    yaml: str
    secrets: dict[str, str]
    not_carried: list[str]


class Importer:
    """One conversion; collects secrets and notes as it goes."""

    def __init__(self, *, vcycle_dir: Path, secrets_dir: str, feedback_url: str,
                 state_dir: str | None, feedback_guessed: bool = False,
                 conf_dirs: tuple[Path, ...] = ()) -> None:
        self.feedback_guessed = feedback_guessed
        self.top_level: dict[str, tuple[object, str]] = {}
        self.vcycle_dir = vcycle_dir
        self.files = VcycleFiles(vcycle_dir, conf_dirs)
        self.secrets_dir = secrets_dir
        self.feedback_url = feedback_url
        self.state_dir = state_dir or DEFAULT_STATE_DIR
        self.state_dir_guessed = not state_dir
        self.secrets: dict[str, str] = {}
        self.not_carried: list[str] = []

    # -- reading ------------------------------------------------------------------------
    @staticmethod
    def read(files: Iterable[Path]) -> configparser.RawConfigParser:
        """Vcycle's reading rules: same-named sections merge, later values win."""
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        for file in files:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"{file}: cannot read: {exc.strerror or exc}") from None
            try:
                parser.read_string(text, source=str(file))
            except configparser.Error as exc:
                raise UsageError(f"{file}: not a Vcycle (INI) file: "
                                 f"{str(exc).splitlines()[0]}") from None
        return parser

    # -- converting ---------------------------------------------------------------------
    def convert(self, parser: configparser.RawConfigParser) -> ImportResult:
        root = Block()
        root.set("state_dir", self.state_dir,
                 ("CHANGE: the default, not from Vcycle: the shared folder every reconcile "
                  "host mounts (NFS, CephFS). " if self.state_dir_guessed else "") +
                 "shared by every host that runs `vcyclectl reconcile` (Vcycle: /var/lib/vcycle)")
        root.set("feedback_url", self.feedback_url,
                 ("CHANGE: guessed from this host's name; VMs on a real cloud must reach it. "
                  if self.feedback_guessed else "") +
                 "the public URL of `vcyclectl serve`, where VMs send heartbeats and "
                 "shutdown messages (Vcycle: its own httpd)")
        spaces = root.child("spaces")
        sections = parser.sections()
        space_names = [s.split(None, 1)[1].strip().lower() for s in sections
                       if s.split()[0].lower() == "space" and len(s.split()) == 2]
        for section in sections:
            words = section.split()
            kind = words[0].lower()
            if kind == "space" and len(words) == 2:
                continue
            if kind in ("machinetype", "vmtype", "vacuum_pipe") and len(words) == 3:
                if words[1].lower() not in space_names:
                    self._drop(root, f"[{section}]", f"no [space {words[1]}] section")
                continue
            self._drop(root, f"[{section}]", "not a Vcycle section vcyclectl knows "
                       "(settings apply per space and machinetype here)")
        for space in space_names:
            self._space(parser, space, spaces)
        share_machinetypes(root, spaces)
        for key, (value, comment) in self.top_level.items():
            root.set(key, value, comment)
        return ImportResult(yaml=render(root), secrets=self.secrets,
                            not_carried=self.not_carried)

    def _drop(self, block: Block, what: str, why: str) -> None:
        text = f"vcycle: {what}: not carried over: {why}"
        block.note(text)
        self.not_carried.append(text)

    def _space(self, parser: configparser.RawConfigParser, name: str, spaces: Block) -> None:
        section = f"space {name}"
        options = dict(parser.items(_section(parser, section)))
        if not SPACE_NAME.fullmatch(name):
            self._drop(spaces, f"[{section}]", "space names are lowercase letters, digits, "
                       "'.' and '-'")
            return
        api = options.pop("api", "openstack").strip().lower()
        cloud = _CLOUDS.get(api)
        if cloud is None:
            self._drop(spaces, f"[{section}] api = {api}", f"vcyclectl has no {api} driver "
                       "(openstack, ec2, gce)")
            return
        block = spaces.child(name)
        block.set("cloud", cloud)
        limit = options.pop("processors_limit", None) or options.pop("max_processors", None)
        if limit is not None:
            block.set("processors_limit", _int(limit, "processors_limit"))
        else:
            block.set("processors_limit", 0, "CHANGE: Vcycle took this from the project's "
                      "quota when unset; vcyclectl creates nothing until you set it")
        if "max_starting_processors" in options:
            block.set("max_starting_processors",
                      _int(options.pop("max_starting_processors"), "max_starting_processors"))
        flavors = options.pop("flavor_names", "").split()
        if options.get("gocdb_sitename", "").strip():  # APEL accounting (docs/accounting.md)
            block.child("accounting").set("gocdb_sitename", options.pop("gocdb_sitename").strip(),
                                          "Vcycle: gocdb_sitename; APEL summaries by default")
        cloud_block = block.child(cloud)
        if cloud == "openstack":
            self._openstack(name, options, cloud_block, block)
        elif cloud == "ec2":
            self._ec2(name, options, cloud_block, block)
        else:
            self._gce(options, cloud_block, block)
        self._top_level_options(options)
        for key, value in sorted(options.items()):
            why = _SPACE_NOT_CARRIED.get(key, "unknown to vcyclectl")
            self._drop(block, f"{key} = {_shown(key, value)}", why)
        if flavors:
            block.child("defaults").set("flavors", flavors, "Vcycle: flavor_names of the space")
        mts = block.child("machinetypes")
        for section_name in parser.sections():
            words = section_name.split()
            if len(words) != 3 or words[1].lower() != name:
                continue
            kind, mt_name = words[0].lower(), words[2].lower()
            if kind in ("machinetype", "vmtype"):
                self._machinetype(parser, section_name, name, mt_name, mts)
            elif kind == "vacuum_pipe":
                self._pipe(parser, section_name, name, mt_name, mts)

    def _top_level_options(self, options: dict[str, str]) -> None:
        """Vcycle options kept per space that vcyclectl keeps once, at the top level."""
        hours = options.pop("cleanup_hours", None)
        if hours is not None:
            seconds = _number(hours, float, "cleanup_hours") * 3600
            self.top_level["joboutputs_keep_seconds"] = (
                int(seconds) if float(seconds).is_integer() else seconds,
                f"Vcycle: cleanup_hours = {hours} (how long joboutputs outlive their machine)")
        hostports = options.pop("vacmon_hostport", None)
        if hostports:
            self.top_level["vacmon_hostport"] = (
                [h.strip() for h in hostports.replace(",", " ").split() if h.strip()],
                "Vcycle: vacmon_hostport (VacMon machine-status messages, docs/metrics.md)")

    def _secret(self, name: str, value: str) -> str:
        """Write-later a secret file and return the path the YAML names."""
        file = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.secrets[file] = value if value.endswith("\n") else value + "\n"
        return f"{self.secrets_dir}/{file}"

    def _openstack(self, space: str, options: dict[str, str], out: Block,
                   block: Block) -> None:
        if "url" in options:
            out.set("auth_url", options.pop("url"))
        else:
            block.note("CHANGE: no url in the Vcycle space: set openstack.auth_url")
        project = options.pop("project_name", None) or options.pop("tenancy_name", None)
        options.pop("tenancy_name", None)
        domain = options.pop("domain_name", None)
        if options.get("region"):
            out.set("region", options.pop("region"))
        cred_id, cred_secret = options.pop("cred_id", None), options.pop("cred_secret", None)
        username, password = options.pop("username", None), options.pop("password", None)
        if cred_id and cred_secret:
            out.set("application_credential_id", cred_id)
            out.set("application_credential_secret_file",
                    self._secret(f"{space}.openstack-application-credential-secret", cred_secret),
                    "secret: kept out of this file")
            if username or password:
                self._drop(block, "username/password", "an application credential is used "
                           "instead (one way to log in per space)")
        elif username:
            out.set("username", username)
            if password:
                out.set("password_file", self._secret(f"{space}.openstack-password", password),
                        "secret: kept out of this file")
            else:
                out.note("CHANGE: no password in the Vcycle space: set password_file")
            if project:
                out.set("project_name", project)
        else:
            out.note("CHANGE: no credentials in the Vcycle space: set an application "
                     "credential (application_credential_id and ..._secret_file)")
        if domain:
            if username and not (cred_id and cred_secret):
                out.set("user_domain_name", domain)
                out.set("project_domain_name", domain)
        if options.get("network_uuid"):
            out.set("network", options.pop("network_uuid"))
        if options.get("security_groups"):
            out.set("security_groups", options.pop("security_groups").replace(",", " ").split())
        if options.get("zones"):
            out.set("availability_zones", options.pop("zones").split())
        if options.get("key_name"):
            out.set("key_name", options.pop("key_name"))
        if cred_id and cred_secret and project:
            self._drop(out, f"project_name = {project}", "an application credential is "
                       "scoped to its project already")

    def _ec2(self, space: str, options: dict[str, str], out: Block, block: Block) -> None:
        url = options.pop("url", None)
        if options.get("region"):
            out.set("region", options.pop("region"))
        if url and not re.match(r"https://ec2\.[a-z0-9-]+\.amazonaws\.com/?$", url):
            out.set("endpoint_url", url, "an EC2-compatible cloud")
        access = options.pop("access_key", None) or options.pop("cred_id", None)
        secret = options.pop("secret_key", None) or options.pop("cred_secret", None)
        if access and secret:
            profile = f"vcyclectl-{space}"
            path = self._secret(f"{space}.aws-credentials",
                                f"[{profile}]\naws_access_key_id = {access}\n"
                                f"aws_secret_access_key = {secret}\n")
            out.set("profile", profile, "Vcycle's access_key/secret_key, as this profile of "
                    "the credentials file below")
            out.set("credentials_file", path, "secret: the keys, kept out of this file "
                    "(relative to it; no AWS_SHARED_CREDENTIALS_FILE needed)")
        else:
            out.note("no keys in the Vcycle space: the standard AWS chain (profile, "
                     "environment, instance role) is used")
        if options.get("security_groups"):
            out.set("security_group_ids", options.pop("security_groups").replace(",", " ")
                    .split())
        if options.get("subnet_id"):
            out.set("subnets", options.pop("subnet_id").split())
        if options.get("key_name"):
            out.set("key_name", options.pop("key_name"))

    def _gce(self, options: dict[str, str], out: Block, block: Block) -> None:
        if options.get("project_id"):
            out.set("project", options.pop("project_id"))
        if options.get("zones"):
            out.set("zones", options.pop("zones").split())
        for key in ("client_email", "private_key"):
            if key in options:
                options.pop(key)
                self._drop(out, f"{key} = (secret)", "use a service-account key file "
                           "(GOOGLE_APPLICATION_CREDENTIALS) or the host's own account")

    def _machinetype_options(self, options: dict[str, str], space: str, mt: str,
                             out: Block) -> None:
        """The options a machinetype and a vacuum_pipe section share."""
        flavors = options.pop("flavor_names", "").split()
        if flavors:
            out.set("flavors", flavors)
        root_image = options.pop("root_image", None)
        if root_image:
            if root_image.startswith("image:"):
                out.set("image", root_image[len("image:"):])
            else:
                self._drop(out, f"root_image = {root_image}", "Vcycle uploaded image files "
                           "itself; upload it to the cloud once and set image: NAME")
        for key, (target, kind) in _MT_NUMBERS.items():
            if key in options:
                out.set(target, _number(options.pop(key), kind, key))
        if "heartbeat_file" in options:
            out.set("heartbeat_file", options.pop("heartbeat_file"))
        if options.get("accounting_fqan", "").strip():
            out.set("accounting_fqan", options.pop("accounting_fqan").strip())
        self._user_data(options, space, mt, out)

    def _user_data(self, options: dict[str, str], space: str, mt: str, out: Block) -> None:
        """The template, its options (secret-looking ones to files) and its files, found
        where Vcycle read them (`files`), or marked CHANGE where that was a guess."""
        user_data = options.pop("user_data", None)
        if user_data:
            if user_data.startswith(("http://", "https://")):
                self._drop(out, f"user_data = {user_data}", "vcyclectl reads templates from "
                           "files: download it once and set user_data: PATH")
            else:
                found = self.files.named_file(space, mt, user_data, "user_data")
                out.set("user_data", str(found.path), found.change)
                if found.path.is_file():
                    self._check_template(found.path, out)
        plain: dict[str, str] = {}
        files: dict[str, str] = {}
        changes: list[str] = []  # comments above user_data_files
        for key in sorted(options):
            if key.startswith("user_data_option_"):
                name, value = key[len("user_data_option_"):], options.pop(key)
                if looks_secret(name):
                    files[name] = self._secret(f"{space}.{mt}.{name}", value)
                else:
                    plain[name] = value
            elif key.startswith("user_data_file_"):
                name, value = key[len("user_data_file_"):], options.pop(key)
                found = self.files.named_file(space, mt, value, f"user_data_file_{name}")
                files[name] = str(found.path)
                changes.extend([found.change] if found.change else [])
        if options.pop("user_data_proxy", "false").strip().lower() == "true":
            for name, file in (("x509_cert", X509_CERT), ("x509_key", X509_KEY)):
                found = self.files.x509_file(space, mt, file)
                files[name] = str(found.path)
                changes.extend([found.change] if found.change else [])
            changes.append("user_data_proxy = True: a proxy from x509cert.pem/x509key.pem, "
                           "valid for max_wallclock_seconds, fills "
                           "##user_data_option_x509_proxy##")
        for key in ("user_data_proxy_cert", "user_data_proxy_key"):
            if key in options:
                self._drop(out, f"{key} = {options.pop(key)}", "deprecated in Vcycle; "
                           "user_data_proxy = True with x509cert.pem/x509key.pem is used")
        if plain:
            out.set("user_data_options", plain)
        if files:
            out.set("user_data_files", files)
            out.comments.setdefault("user_data_files", []).extend(changes)

    def _check_template(self, path: Path, out: Block) -> None:
        """Name the ##user_data_…## words a Vcycle template uses that vcyclectl does not fill."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            out.note(f"CHANGE: {path} is not readable here: copy the Vcycle machinetype files "
                     "or fix the path (config check reads it)")
            return
        unknown = sorted({w for w in re.findall(r"##user_data_([A-Za-z0-9_]+)##", text)
                          if w not in _KNOWN_PLACEHOLDERS and not w.startswith("option_")})
        if unknown:
            self._drop(out, f"{path}: " + ", ".join(f"##user_data_{w}##" for w in unknown),
                       "vcyclectl does not fill these; edit the template (config check "
                       "refuses it until then)")

    def _machinetype(self, parser: configparser.RawConfigParser, section: str, space: str,
                     mt: str, mts: Block) -> None:
        if not MACHINETYPE_NAME.fullmatch(mt):
            self._drop(mts, f"[{section}]", "machinetype names are lowercase letters, digits "
                       "and '-', at most 40")
            return
        options = dict(parser.items(section))
        out = mts.child(mt)
        self._machinetype_options(options, space, mt, out)
        for key, value in sorted(options.items()):
            self._drop(out, f"{key} = {_shown(key, value)}",
                       _MT_NOT_CARRIED.get(key, "unknown to vcyclectl"))

    def _pipe(self, parser: configparser.RawConfigParser, section: str, space: str,
              prefix: str, mts: Block) -> None:
        if not MACHINETYPE_NAME.fullmatch(prefix):
            self._drop(mts, f"[{section}]", "a pipe prefix is a machinetype name")
            return
        options = dict(parser.items(section))
        url = options.pop("vacuum_pipe_url", None)
        if not url:
            self._drop(mts, f"[{section}]", "no vacuum_pipe_url")
            return
        out = mts.child(prefix)
        out.set("vacuum_pipe", url, "expands into PREFIX-SUFFIX machinetypes (docs/"
                "machinetypes.md); the pipe's target_shares split this entry's total")
        if "target_share" in options:
            out.set("target_share", _number(options.pop("target_share"), float, "target_share"))
        self._machinetype_options(options, space, prefix, out)
        for key, value in sorted(options.items()):
            self._drop(out, f"{key} = {_shown(key, value)}",
                       _MT_NOT_CARRIED.get(key, "unknown to vcyclectl"))


def _section(parser: configparser.RawConfigParser, wanted: str) -> str:
    """Vcycle lower-cases section names; find the section whatever its case in the file."""
    for section in parser.sections():
        if " ".join(section.split()).lower() == wanted:
            return section
    raise KeyError(wanted)


def _shown(key: str, value: str) -> str:
    return "(secret, not shown)" if looks_secret(key) else value


def _int(value: str, key: str) -> int:
    return int(_number(value, int, key))


def _number(value: str, kind: type, key: str) -> Any:
    try:
        number = float(value.strip())
    except ValueError:
        raise UsageError(f"Vcycle option {key} = {value!r} is not a number") from None
    if kind is int:
        return int(number)
    return int(number) if number.is_integer() else number


def import_vcycle(files: list[Path], *, vcycle_dir: Path = Path("/var/lib/vcycle"),
                  secrets_dir: str = "secrets", feedback_url: str | None = None,
                  state_dir: str | None = None) -> ImportResult:
    """Convert Vcycle files (read in the order given) into vcyclectl YAML and secret files."""
    if not files:
        raise UsageError("name at least one Vcycle file (/etc/vcycle.conf /etc/vcycle.d/*.conf)")
    guessed = feedback_url is None
    if feedback_url is None:
        import socket

        feedback_url = f"https://{socket.getfqdn()}"
    importer = Importer(vcycle_dir=vcycle_dir, secrets_dir=secrets_dir,
                        feedback_url=feedback_url, state_dir=state_dir,
                        feedback_guessed=guessed,
                        conf_dirs=tuple(dict.fromkeys(Path(f).parent for f in files)))
    return importer.convert(importer.read(files))
