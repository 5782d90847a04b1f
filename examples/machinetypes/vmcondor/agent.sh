#!/bin/sh
# vcyclectl-agent for VMCondor: an HTCondor execute node joining a pool with an IDTOKEN.
#
# No X.509 anywhere: the pool's collector trusts IDTOKENS signed by its own key, and the
# site gets one token (`vmcondor-admin worker-token` on the vmcondor-manager VM: identity
# vmcondor-worker@POOL, scopes ADVERTISE_STARTD ADVERTISE_MASTER READ) that every VM presents. The startd talks to the pool through CCB, so the VMs
# need no inbound ports. Ends with 300 after IDLE_SECONDS without a claim, 100 near MJF
# shutdowntime, 500 if condor cannot start here, 600 if the pool never answers.
set -u
: "${VM_LIB:=/usr/local/lib/vcyclectl-vm}"
: "${VM_ETC:=/etc/vcyclectl-vm}"
: "${CONDOR_CONFIG_DIR:=/etc/condor}"
: "${POLL_SECONDS:=60}"
: "${SHUTDOWN_GRACE_SECONDS:=300}"
# shellcheck source=/dev/null
. "$VM_LIB/feedback.sh"
# shellcheck source=/dev/null
. "$VM_ETC/agent.env"   # CONDOR_HOST SPACE IDLE_SECONDS CVMFS_PROXY
: "${IDLE_SECONDS:=900}"

finish() {
    condor_off -master -fast >/dev/null 2>&1 || true
    vm_finish "$1" "$2"
}

vm_start_heartbeats
command -v condor_master >/dev/null || finish 500 "$MSG_500 (HTCondor missing from the image)"

umask 077
mkdir -p "$CONDOR_CONFIG_DIR/config.d" "$CONDOR_CONFIG_DIR/tokens.d"
cp "$VM_ETC/pool.idtoken" "$CONDOR_CONFIG_DIR/tokens.d/vmcondor.token"
umask 022
cat > "$CONDOR_CONFIG_DIR/config.d/50-vmcondor.conf" <<CONF
# Written by vcyclectl-agent.
CONDOR_HOST = $CONDOR_HOST
use ROLE : Execute
SEC_DEFAULT_AUTHENTICATION_METHODS = IDTOKENS
SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS
SEC_TOKEN_DIRECTORY = $CONDOR_CONFIG_DIR/tokens.d
SEC_DEFAULT_ENCRYPTION = REQUIRED
SEC_DEFAULT_INTEGRITY = REQUIRED
CCB_ADDRESS = \$(COLLECTOR_HOST)
UPDATE_COLLECTOR_WITH_TCP = True
START = True
SUSPEND = False
PREEMPT = False
KILL = False
NUM_SLOTS = 1
NUM_SLOTS_TYPE_1 = 1
SLOT_TYPE_1 = 100%
SLOT_TYPE_1_PARTITIONABLE = True
# What the pool's jobs match on (the manager appends TARGET.VMCondor =?= True).
VMCondor = True
VMCONDOR_SPACE = "$SPACE"
STARTD_ATTRS = \$(STARTD_ATTRS) VMCondor VMCONDOR_SPACE
CONF

if [ -n "${CVMFS_PROXY:-}" ] && [ -d /etc/cvmfs ]; then
    printf 'CVMFS_HTTP_PROXY="%s"\n' "$CVMFS_PROXY" > /etc/cvmfs/default.local
fi

condor_master || finish 500 "$MSG_500 (condor_master did not start)"

# Wait until the collector has our startd: proof that the token and the network work.
tries=0
until condor_status -startd -af Name 2>/dev/null | grep -q "@$(hostname)\$\|^$(hostname)"; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || finish 600 "$MSG_600 (the pool never listed this startd)"
    sleep 10
done
vm_log "joined pool $CONDOR_HOST"

idle=0
while :; do
    sleep "$POLL_SECONDS"
    if [ "$(vm_seconds_left)" -lt "$SHUTDOWN_GRACE_SECONDS" ]; then
        finish 100 "$MSG_100 (MJF shutdowntime)"
    fi
    pgrep -x condor_master >/dev/null || finish 600 "$MSG_600 (condor_master exited)"
    # A partitionable slot stays Unclaimed; each running job is a Claimed dynamic slot.
    if condor_status -direct "$(hostname)" -startd -af State 2>/dev/null | grep -q Claimed; then
        idle=0
        continue
    fi
    idle=$((idle + POLL_SECONDS))
    [ "$idle" -lt "$IDLE_SECONDS" ] || finish 300 "$MSG_300"
done
