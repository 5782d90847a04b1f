#!/bin/sh
# vcyclectl-agent for the VMCondor pool manager: collector + negotiator + CCB + schedd.
#
# First boot makes the pool's token signing key (passwords.d/POOL, 64 random bytes, 0600,
# never leaves this VM) and the workers' IDTOKEN (VMCONDOR_STATE/worker.idtoken, for the
# admin to copy into vcyclectl's secrets). Then it runs HTCondor and heartbeats. It ends
# itself only when MJF shutdowntime is near AND no job is queued (100); while jobs are
# queued it stays up. 500 if HTCondor is missing or will not start here, 600 if the
# collector never answers or condor_master dies.
set -u
: "${VM_LIB:=/usr/local/lib/vcyclectl-vm}"
: "${VM_ETC:=/etc/vcyclectl-vm}"
: "${CONDOR_CONFIG_DIR:=/etc/condor}"
: "${VMCONDOR_STATE:=/var/lib/vmcondor}"
: "${VMCONDOR_ADMIN:=/usr/local/sbin/vmcondor-admin}"
: "${POLL_SECONDS:=60}"
: "${SHUTDOWN_GRACE_SECONDS:=600}"
# shellcheck source=/dev/null
. "$VM_LIB/feedback.sh"
# shellcheck source=/dev/null
. "$VM_ETC/agent.env"   # POOL_NAME MANAGER_ADDRESS SPACE

finish() {
    condor_off -master -fast >/dev/null 2>&1 || true
    vm_finish "$1" "$2"
}

# jobs_queued: the number of jobs not yet removed or completed; "unknown" if the schedd
# does not answer (then the VM stays up: it never ends on a guess).
jobs_queued() {
    out=$(condor_q -allusers -constraint 'JobStatus =!= 3 && JobStatus =!= 4' \
        -af ClusterId 2>/dev/null) || { echo unknown; return; }
    printf '%s\n' "$out" | grep -c .
}

vm_start_heartbeats
for tool in condor_master condor_token_create condor_q openssl; do
    command -v "$tool" >/dev/null || finish 500 "$MSG_500 (HTCondor missing from the image: no $tool)"
done

umask 077
mkdir -p "$CONDOR_CONFIG_DIR/passwords.d" "$CONDOR_CONFIG_DIR/tokens.d" "$VMCONDOR_STATE"
if [ ! -s "$CONDOR_CONFIG_DIR/passwords.d/POOL" ]; then
    openssl rand 64 > "$CONDOR_CONFIG_DIR/passwords.d/POOL" \
        || finish 500 "$MSG_500 (could not create the token signing key)"
    vm_log "first boot: new token signing key POOL for pool $POOL_NAME"
fi
umask 022

condor_master || finish 500 "$MSG_500 (condor_master did not start)"

tries=0
until condor_status -collector -af Name >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || finish 600 "$MSG_600 (the collector never answered)"
    sleep 10
done
vm_log "pool $POOL_NAME up at $MANAGER_ADDRESS:9618"

if [ ! -s "$VMCONDOR_STATE/worker.idtoken" ]; then
    (umask 077; "$VMCONDOR_ADMIN" worker-token > "$VMCONDOR_STATE/worker.idtoken") \
        || vm_log "could not issue the worker token; run vmcondor-admin worker-token"
fi

restarts=0
while :; do
    sleep "$POLL_SECONDS"
    if ! pgrep -x condor_master >/dev/null; then
        restarts=$((restarts + 1))
        [ "$restarts" -le 3 ] || finish 600 "$MSG_600 (condor_master keeps exiting)"
        vm_log "condor_master exited; restarting ($restarts)"
        condor_master || true
        continue
    fi
    if [ "$(vm_seconds_left)" -lt "$SHUTDOWN_GRACE_SECONDS" ]; then
        queued=$(jobs_queued)
        if [ "$queued" = 0 ]; then
            finish 100 "$MSG_100 (MJF shutdowntime, no jobs queued)"
        fi
        vm_log "MJF shutdowntime near but $queued jobs queued: staying up"
    fi
done
