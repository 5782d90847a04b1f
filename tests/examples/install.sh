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
PACKAGES="cloud-init shellcheck openssl slurm-wlm munge wireguard-go wireguard-tools iproute2 curl util-linux"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "tests/examples/install.sh: all present:$PACKAGES" >&2
    exit 0
fi
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=yes
fi
trap '[ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
