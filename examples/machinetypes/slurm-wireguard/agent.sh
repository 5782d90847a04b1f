#!/bin/sh
# vcyclectl-agent for the EUCLID Slurm worker (slurm-wireguard).
#
# 1. Makes its own WireGuard key and registers the public half with the community's hub
#    (an HTTPS POST with the site's registration token); the hub answers with this VM's
#    tunnel address and the hub's key and endpoint, and adds the VM as a peer.
# 2. Brings the tunnel up (kernel WireGuard, or wireguard-go where the kernel has none).
# 3. Starts munged with the community's munge key and slurmd as a dynamic node (-Z): the
#    controller learns the node from its registration and reaches it at its tunnel address.
# 4. Heartbeats to vcyclectl; ends with 300 when no job has run for IDLE_SECONDS, 100 when
#    MJF shutdowntime is near, 400/500/600 when registration, the site or the tunnel fail.
#
# Settings come from $VM_ETC/agent.env (filled from user_data options); the paths below
# have defaults for a real VM and are overridden by the self-test.
set -u
: "${VM_LIB:=/usr/local/lib/vcyclectl-vm}"
: "${VM_ETC:=/etc/vcyclectl-vm}"
: "${VM_RUN:=/run/vcyclectl-vm}"
: "${VM_STATE:=/var/lib/vcyclectl-vm}"
: "${SLURMD_SPOOL:=/var/spool/vcyclectl-slurmd}"
: "${WG_INTERFACE:=wg0}"
: "${POLL_SECONDS:=30}"
: "${SHUTDOWN_GRACE_SECONDS:=300}"
# shellcheck source=/dev/null
. "$VM_LIB/feedback.sh"
# shellcheck source=/dev/null
. "$VM_ETC/agent.env"   # SLURM_CLUSTER SLURM_CONTROLLER SLURM_CONTROLLER_ADDRESS WG_REGISTER_URL IDLE_SECONDS
: "${IDLE_SECONDS:=900}"
: "${SLURM_FEATURES:=vcyclectl}"

mkdir -p "$VM_RUN" "$VM_STATE"
umask 077
# slurmstepd makes a Unix socket SPOOL/NODE_JOB.STEP (at most 108 bytes): a long machine
# name is cut to its unique random tail for the Slurm node name.
NODE=$(hostname)
if [ "${#NODE}" -gt 48 ]; then
    NODE="vc-${NODE##*-}"
fi
PIDS=""

stop_services() {
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null
    done
    for pidfile in "$VM_RUN/slurmd.pid" "$VM_RUN/munged.pid"; do
        if [ -s "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null
        fi
    done
    ip link delete "$WG_INTERFACE" 2>/dev/null
    return 0
}

finish() {
    stop_services
    vm_finish "$1" "$2"
}

vm_start_heartbeats

# -- 1. WireGuard registration -------------------------------------------------------------
command -v wg >/dev/null || finish 500 "$MSG_500 (wireguard-tools missing from the image)"
# curl reads the token from a 0600 file (-K), so it never shows in `ps`.
printf 'header = "Authorization: Bearer %s"\n' "$(tr -d ' \n' < "$VM_ETC/register.token")" \
    > "$VM_RUN/register-auth"
wg genkey > "$VM_STATE/wg.key"
public_key=$(wg pubkey < "$VM_STATE/wg.key")
status=$(printf '%s\n%s\n' "$public_key" "$NODE" |
    curl -sS --max-time 60 --retry 5 --retry-delay 5 -K "$VM_RUN/register-auth" \
        -o "$VM_STATE/registration" -w '%{http_code}' --data-binary @- "$WG_REGISTER_URL") ||
    finish 600 "$MSG_600 (WireGuard hub registration unreachable)"
case "$status" in
    200) ;;
    401|403) finish 400 "$MSG_400 (WireGuard hub refused this site's registration token)" ;;
    *) finish 600 "$MSG_600 (WireGuard hub registration answered HTTP $status)" ;;
esac
address=$(sed -n 's/^address=//p' "$VM_STATE/registration")
hub_key=$(sed -n 's/^hub_public_key=//p' "$VM_STATE/registration")
hub_endpoint=$(sed -n 's/^hub_endpoint=//p' "$VM_STATE/registration")
allowed=$(sed -n 's/^allowed_ips=//p' "$VM_STATE/registration")
if [ -z "$address" ] || [ -z "$hub_key" ] || [ -z "$hub_endpoint" ] || [ -z "$allowed" ]; then
    finish 600 "$MSG_600 (WireGuard hub registration answer incomplete)"
fi

# -- 2. the tunnel --------------------------------------------------------------------------
if ! ip link add "$WG_INTERFACE" type wireguard 2>/dev/null; then
    command -v wireguard-go >/dev/null ||
        finish 500 "$MSG_500 (no WireGuard in the kernel and no wireguard-go)"
    WG_PROCESS_FOREGROUND=1 wireguard-go -f "$WG_INTERFACE" >"$VM_STATE/wireguard-go.log" 2>&1 &
    PIDS="$PIDS $!"
    tries=0
    until ip link show "$WG_INTERFACE" >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || finish 500 "$MSG_500 (wireguard-go did not start)"
        sleep 0.2
    done
fi
wg set "$WG_INTERFACE" private-key "$VM_STATE/wg.key" \
    peer "$hub_key" endpoint "$hub_endpoint" allowed-ips "$allowed" persistent-keepalive 25 ||
    finish 500 "$MSG_500 (cannot configure $WG_INTERFACE)"
if ! ip address add "$address" dev "$WG_INTERFACE" || ! ip link set "$WG_INTERFACE" up; then
    finish 500 "$MSG_500 (cannot bring $WG_INTERFACE up)"
fi
tries=0
while :; do
    # Any TCP attempt through the tunnel starts the handshake; its answer does not matter.
    curl -s -o /dev/null --max-time 2 "telnet://$SLURM_CONTROLLER_ADDRESS:6817" </dev/null
    handshake=$(wg show "$WG_INTERFACE" latest-handshakes | awk '{print $2}')
    [ "${handshake:-0}" -gt 0 ] && break
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || finish 600 "$MSG_600 (no WireGuard handshake with the hub)"
    sleep 2
done
vm_log "tunnel up: $address via $hub_endpoint"

# -- 3. munge and slurmd ------------------------------------------------------------------
mkdir -p "$VM_STATE/munge" "$SLURMD_SPOOL"
base64 -d < "$VM_ETC/munge.key.b64" > "$VM_STATE/munge/munge.key" 2>/dev/null ||
    finish 500 "$MSG_500 (munge_key_b64 is not base64)"
chmod 0400 "$VM_STATE/munge/munge.key"
munged --force --key-file="$VM_STATE/munge/munge.key" --socket="$VM_RUN/munge.socket" \
    --pid-file="$VM_RUN/munged.pid" --log-file="$VM_STATE/munge/munged.log" \
    --seed-file="$VM_STATE/munge/munge.seed" ||
    finish 500 "$MSG_500 (munged did not start)"

cat > "$VM_STATE/slurm.conf" <<CONF
# Written by vcyclectl-agent: only what a dynamic worker node needs to know.
ClusterName=$SLURM_CLUSTER
SlurmctldHost=$SLURM_CONTROLLER($SLURM_CONTROLLER_ADDRESS)
AuthType=auth/munge
AuthInfo=socket=$VM_RUN/munge.socket
CredType=cred/munge
SlurmdUser=root
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmdPidFile=$VM_RUN/slurmd.pid
SlurmdLogFile=$VM_STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
DebugFlags=NO_CONF_HASH
CONF

cpus=$(nproc)
memory=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
slurmd -f "$VM_STATE/slurm.conf" -Z -N "$NODE" \
    --conf "CPUs=$cpus RealMemory=$memory Feature=$SLURM_FEATURES" ||
    finish 600 "$MSG_600 (slurmd did not start)"
vm_log "slurmd started as $NODE with $cpus CPUs"

# -- 4. work until idle, drained or out of time --------------------------------------------
busy_steps() {
    # slurmstepd leaves one socket per running step, named NODE_JOB.STEP, in the spool.
    for step in "$SLURMD_SPOOL/${NODE}"_*; do
        [ -e "$step" ] && return 0
    done
    return 1
}

idle=0
jobs_seen=0
while :; do
    sleep "$POLL_SECONDS"
    if [ "$(vm_seconds_left)" -lt "$SHUTDOWN_GRACE_SECONDS" ]; then
        finish 100 "$MSG_100 (MJF shutdowntime)"
    fi
    if [ ! -s "$VM_RUN/slurmd.pid" ] || ! kill -0 "$(cat "$VM_RUN/slurmd.pid")" 2>/dev/null; then
        finish 600 "$MSG_600 (slurmd exited)"
    fi
    if busy_steps; then
        idle=0
        jobs_seen=1
        continue
    fi
    idle=$((idle + POLL_SECONDS))
    if [ "$idle" -ge "$IDLE_SECONDS" ]; then
        echo "$jobs_seen" | vm_put jobs_seen || true
        finish 300 "$MSG_300"
    fi
done
