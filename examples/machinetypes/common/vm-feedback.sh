#!/bin/sh
# vm-feedback.sh - how a vcyclectl VM talks to `vcyclectl serve` (sourced by every agent).
#
# One copy is shared by all example definitions: each machinetype.yaml names this file in
# user_data_files (vm_feedback_sh), and the template writes it to the VM as
# /usr/local/lib/vcyclectl-vm/feedback.sh. Reporting is the same for every payload:
#   - a heartbeat (the Unix time) PUT to joboutputs every HEARTBEAT_SECONDS;
#   - MJF shutdowntime read before taking more work, so a drained or expiring machine
#     finishes on time instead of being killed;
#   - exactly one shutdown_message with a Vac/Vcycle code, then the VM powers off.
# The bearer token is read by curl from a 0600 file (-K), so it never shows in `ps`.
#
# Settings (environment, with defaults for a real VM; the self-tests override them):
#   VM_ETC            folder holding feedback.env and curl-auth   (/etc/vcyclectl-vm)
#   VM_POWEROFF       command that ends the VM                      (poweroff)
#   HEARTBEAT_FILE    joboutputs name of the heartbeat             (heartbeat)
#   HEARTBEAT_SECONDS seconds between heartbeats                   (300)

: "${VM_ETC:=/etc/vcyclectl-vm}"
: "${VM_POWEROFF:=poweroff}"
: "${HEARTBEAT_FILE:=heartbeat}"
: "${HEARTBEAT_SECONDS:=300}"

# shellcheck source=/dev/null
. "$VM_ETC/feedback.env"   # MACHINEFEATURES JOBFEATURES JOBOUTPUTS

vm_log() {
    printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

# vm_put NAME: store stdin as joboutputs/NAME (retried: the service may be restarting).
vm_put() {
    [ -n "$JOBOUTPUTS" ] || { vm_log "no joboutputs URL: not reporting $1"; return 1; }
    curl -fsS --retry 3 --retry-delay 2 --max-time 30 -K "$VM_ETC/curl-auth" \
        -T - "$JOBOUTPUTS/$1" >/dev/null
}

# vm_get_mjf KEY: one machinefeatures value on stdout (empty if unknown).
vm_get_mjf() {
    [ -n "$MACHINEFEATURES" ] || return 1
    curl -fsS --max-time 30 -K "$VM_ETC/curl-auth" "$MACHINEFEATURES/$1"
}

vm_heartbeat() {
    date +%s | vm_put "$HEARTBEAT_FILE"
}

# Heartbeats in the background until the agent exits; the first one at once. The loop
# ticks every second and ends by itself once the agent is gone, and its children hold none
# of the agent's output, so nothing it started outlives the agent for long.
vm_start_heartbeats() {
    (
        agent=$$
        tick=0
        while kill -0 "$agent" 2>/dev/null; do
            if [ "$tick" -eq 0 ]; then
                vm_heartbeat 2>/dev/null </dev/null || vm_log "heartbeat not delivered"
            fi
            tick=$(( (tick + 1) % HEARTBEAT_SECONDS ))
            sleep 1 >/dev/null 2>&1
        done
    ) &
    VM_HEARTBEAT_PID=$!
    trap 'kill "$VM_HEARTBEAT_PID" 2>/dev/null' EXIT
}

# vm_seconds_left: seconds until MJF shutdowntime (a large number when it is not known).
vm_seconds_left() {
    when=$(vm_get_mjf shutdowntime 2>/dev/null) || when=""
    case "$when" in
        ''|*[!0-9]*) echo 999999999 ;;
        *) echo $((when - $(date +%s))) ;;
    esac
}

# vm_finish CODE MESSAGE: report why the VM ends, stop heartbeating, power off.
vm_finish() {
    vm_log "finishing: $1 $2"
    printf '%s %s\n' "$1" "$2" | vm_put shutdown_message || vm_log "shutdown_message not delivered"
    if [ -n "${VM_HEARTBEAT_PID:-}" ]; then
        kill "$VM_HEARTBEAT_PID" 2>/dev/null
    fi
    $VM_POWEROFF
    exit 0
}

# The Vac/Vcycle shutdown message codes (SPEC.md).
MSG_100="Shutdown as requested"
MSG_200="Intended work completed ok"
MSG_300="No more work available from task queue"
MSG_400="Site/host/VM is currently banned/disabled"
MSG_500="Problem detected with environment/VM provided by the site"
MSG_600="Grid-wide problem with job agent or application within VM"
MSG_700="Problem with the VM but not the site"
export MSG_100 MSG_200 MSG_300 MSG_400 MSG_500 MSG_600 MSG_700
