#!/bin/sh
# Install what tests/examples needs from Debian 12's own archive; safe to run again.
#   cloud-init  - `cloud-init schema --config-file F` validates each definition's user_data
#   ShellCheck  - lints the shell parts of each definition
#   openssl     - throwaway example certificates; `openssl verify` of the X.509 proxies
#   slurm-wlm, munge, wireguard-go, wireguard-tools, iproute2, curl, util-linux (nsenter)
#               - the EUCLID Slurm worker self-test (a real slurmctld over a real tunnel)
# Daemons are never started by the package scripts here (policy-rc.d exit 101), so the
# machine running CI is left as it was apart from the installed files.
set -eu
NO_DAEMONS=1 exec sh "$(dirname "$0")/../debian-install.sh" tests/examples/install.sh \
    cloud-init shellcheck openssl slurm-wlm munge wireguard-go wireguard-tools iproute2 curl \
    util-linux
