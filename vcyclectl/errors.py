"""One small error taxonomy for the whole program.

Every error a user can cause or a cloud can raise is a `VcyclectlError`; the CLI maps them
to exit codes in one place (`cli.py`), so commands never call `sys.exit` themselves.
Cloud errors are split by what the reconciler should do next, not by where they came from:
retry (`Transient`), stop creating in this space (`QuotaExceeded`), or give up on the
space for this pass (`Fatal`).
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The documented exit codes (SPEC.md)."""

    OK = 0
    SPACE_FAILED = 1
    USAGE = 2
    LOCK_TIMEOUT = 3
    NOT_FOUND = 4


class VcyclectlError(Exception):
    """Base of every error we expect; anything else reaching the CLI is a bug."""

    exit_status: ExitStatus = ExitStatus.SPACE_FAILED


class ConfigError(VcyclectlError):
    """Bad configuration: says which file, line and key, and what is wrong."""

    exit_status = ExitStatus.USAGE

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class ConfigErrors(ConfigError):
    """Every configuration error found in one go, so a site fixes them all in one round.

    `str()` is one error per line; the CLI prints each as its own `vcyclectl: ` line.
    """

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = self.flatten(errors)
        first = self.errors[0]
        super().__init__(first.message, file=first.file, line=first.line, key=first.key)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    @staticmethod
    def flatten(errors: "list[ConfigError]") -> list[ConfigError]:
        """Single errors, with any `ConfigErrors` among them opened up."""
        out: list[ConfigError] = []
        for error in errors:
            out.extend(error.errors if isinstance(error, ConfigErrors) else [error])
        return out

    @classmethod
    def raise_if_any(cls, errors: "list[ConfigError]") -> None:
        """Raise the only error as itself, several as one `ConfigErrors`, none: return."""
        flat = cls.flatten(errors)
        if len(flat) == 1:
            raise flat[0]
        if flat:
            raise cls(flat)


class UsageError(VcyclectlError):
    """A command was called with arguments that make no sense; nothing was touched."""

    exit_status = ExitStatus.USAGE


class NotFound(VcyclectlError):
    """`inspect`/`drain` named something that does not exist."""

    exit_status = ExitStatus.NOT_FOUND


class LockTimeout(VcyclectlError):
    """`--wait` ran out before another host released a space's lock."""

    exit_status = ExitStatus.LOCK_TIMEOUT


class StateError(VcyclectlError):
    """The state directory is unreadable, of an unknown format, or otherwise unusable."""


class StateDirUnusable(StateError):
    """The state directory is missing, not initialised, not a directory or not readable.

    Most often an NFS share that is not mounted: showing an empty fleet then would be a
    lie, so read-only commands refuse with the path instead. Nothing was touched (exit 2).
    """

    exit_status = ExitStatus.USAGE


class CloudError(VcyclectlError):
    """Base of everything a cloud driver raises. Messages must never contain secrets."""


class Transient(CloudError):
    """Worth retrying after a jittered delay: timeouts, 5xx, throttling, conflicts."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(CloudError):
    """The tenancy refuses more machines: stop creating in this space for this pass."""


class Fatal(CloudError):
    """Authentication, authorisation or configuration: skip the space, exit 1."""


class IncompleteListing(Transient):
    """A listing that failed part way or was cut short: the space must not be acted on."""
