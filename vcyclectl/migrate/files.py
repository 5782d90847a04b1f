"""Where Vcycle read a machinetype's files, and where the import finds them.

Vcycle (`vacutils.createUserData`, called from `shared.py` with the machinetype's
`machinetype_path`, `/var/lib/vcycle/spaces/SPACE/machinetypes/MT` unless a vacuum pipe set
it to the pipe's prefix) reads:
- `user_data` and every `user_data_file_X`: an absolute path as it is, a relative name from
  `MTDIR/files/NAME` (since Vcycle 0.8; `user_data` may also be an https:// URL);
- with `user_data_proxy = True`: `MTDIR/x509cert.pem` and `MTDIR/x509key.pem`, fixed names
  beside `files/`, not in it.

Sites did not always keep that layout: some kept the files flat, beside `vcycle.conf` or
straight in `/var/lib/vcycle`. A file found where Vcycle reads it is used as it is; one found
only in such another place is used too, but marked `# CHANGE:` (the import guessed it is the
file Vcycle used); one found nowhere keeps the standard path, marked `# CHANGE:` (copy it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The fixed names Vcycle's `user_data_proxy = True` reads from the machinetype's folder.
X509_CERT, X509_KEY = "x509cert.pem", "x509key.pem"


@dataclass(frozen=True)
class Found:
    """A path for the YAML, and the `CHANGE:` note to put above it when it is a guess."""

    path: Path
    change: str | None = None


@dataclass(frozen=True)
class VcycleFiles:
    """The folders one import searches: Vcycle's state folder and each config file's folder."""

    vcycle_dir: Path
    conf_dirs: tuple[Path, ...] = ()

    def machinetype_dir(self, space: str, machinetype: str) -> Path:
        return self.vcycle_dir / "spaces" / space / "machinetypes" / machinetype

    def named_file(self, space: str, machinetype: str, name: str, what: str) -> Found:
        """`user_data` or a `user_data_file_X`: MTDIR/files/NAME in Vcycle."""
        if name.startswith("/"):
            path = Path(name)
            return Found(path, None if path.is_file() else
                         f"CHANGE: {what} {path} is not readable on this host: copy it here or "
                         "fix the path (config check reads it)")
        mt_dir = self.machinetype_dir(space, machinetype)
        return self._search(mt_dir / "files" / name, what, [
            mt_dir / name, *self._flat(space, machinetype, name)])

    def x509_file(self, space: str, machinetype: str, name: str) -> Found:
        """`x509cert.pem` / `x509key.pem` of `user_data_proxy = True`: MTDIR/NAME in Vcycle."""
        mt_dir = self.machinetype_dir(space, machinetype)
        return self._search(mt_dir / name, f"user_data_proxy's {name}", [
            mt_dir / "files" / name, *self._flat(space, machinetype, name)])

    def _flat(self, space: str, machinetype: str, name: str) -> list[Path]:
        """Flat layouts: in the state folder or beside a config file, per space, per
        machinetype, or plain."""
        out: list[Path] = []
        for folder in (self.vcycle_dir, *self.conf_dirs):
            out.extend([folder / space / machinetype / name, folder / machinetype / name,
                        folder / name])
        return out

    @staticmethod
    def _search(standard: Path, what: str, elsewhere: list[Path]) -> Found:
        if standard.is_file():
            return Found(standard)
        for candidate in dict.fromkeys(elsewhere):  # in order, each once
            if candidate.is_file():
                return Found(candidate, f"CHANGE: {what} found at {candidate}, not where "
                             f"Vcycle reads it ({standard}): check it is the file Vcycle used")
        return Found(standard, f"CHANGE: {what} was not found on this host (Vcycle reads "
                     f"{standard}): copy the Vcycle machinetype files here or fix the path "
                     "(config check reads it)")
