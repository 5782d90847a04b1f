"""vmcondor: HTCondor's commands for a VMCondor pool, with the pool, the token and the
submit boilerplate hidden. Users install this package only (it needs the `htcondor` wheel,
never vcyclectl or a cloud SDK)."""

__version__ = "0.1.0"
