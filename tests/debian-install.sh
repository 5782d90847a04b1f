#!/bin/sh
# Install Debian packages the tests need, only those missing; safe to run again. The one
# copy of this logic for tests/browser-install.sh, tests/packaging/install.sh and
# tests/examples/install.sh, which say what each package is for.
#   sh tests/debian-install.sh WHO PACKAGE...
# With NO_DAEMONS=1 the package scripts start no daemon (policy-rc.d exit 101, removed
# afterwards), so the machine running CI is left as it was apart from the installed files.
set -eu
who="$1"
shift
missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "$who: all present: $*" >&2
    exit 0
fi
created_policy=""
if [ "${NO_DAEMONS:-}" = 1 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=yes
fi
trap '[ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
