#!/bin/sh
# vcyclectl-agent for a DIRAC multiprocessor pilot VM (GridPP, LHCb, ATLAS... by option).
#
# Fetches the community's pilot files, then runs one dirac-pilot.py with all the VM's
# processors as a Pool CE, so the JobAgent can run multiprocessor and single-processor
# payloads side by side. The pilot authenticates with an RFC 3820 proxy that vcyclectl
# made from the site's certificate for this machine only, valid for max_wallclock_seconds.
# MACHINEFEATURES/JOBFEATURES are passed on: DIRAC's JobAgent reads shutdowntime itself and
# stops taking payloads in time. The pilot's own shutdown_message wins; otherwise a clean
# exit means the task queue had nothing more (300) and a failure is the pilot's (600).
set -u
: "${VM_LIB:=/usr/local/lib/vcyclectl-vm}"
: "${VM_ETC:=/etc/vcyclectl-vm}"
: "${PILOT_DIR:=/scratch/plt}"
: "${PILOT_USER:=plt}"
# shellcheck source=/dev/null
. "$VM_LIB/feedback.sh"
# shellcheck source=/dev/null
. "$VM_ETC/agent.env"   # VO DIRAC_SETUP CE_NAME QUEUE SUBMIT_POOL PILOT_URL DIRAC_OPTS CVMFS_PROXY

vm_start_heartbeats
command -v python3 >/dev/null || vm_finish 500 "$MSG_500 (python3 missing from the image)"

if [ -n "${CVMFS_PROXY:-}" ] && [ -d /etc/cvmfs ]; then
    printf 'CVMFS_HTTP_PROXY="%s"\n' "$CVMFS_PROXY" > /etc/cvmfs/default.local
    cvmfs_config reload >/dev/null 2>&1 || true
fi
export X509_CERT_DIR=/cvmfs/grid.cern.ch/etc/grid-security/certificates
[ -d "$X509_CERT_DIR" ] || vm_finish 500 "$MSG_500 (no CA certificates in CVMFS: check cvmfs_proxy)"

id "$PILOT_USER" >/dev/null 2>&1 || useradd --create-home --home-dir "$PILOT_DIR" "$PILOT_USER"
mkdir -p "$PILOT_DIR/etc/grid-security"
install -m 0600 -o "$PILOT_USER" "$VM_ETC/pilot.proxy" "$PILOT_DIR/etc/grid-security/proxy.pem"

cd "$PILOT_DIR" || vm_finish 500 "$MSG_500 (no pilot folder)"
for file in dirac-pilot.py pilotCommands.py pilotTools.py pilot.json; do
    curl -fsS --retry 3 --max-time 120 --capath "$X509_CERT_DIR" -o "$file" \
        "${PILOT_URL%/}/$file" || vm_finish 600 "$MSG_600 (cannot fetch $file from $PILOT_URL)"
done
chown -R "$PILOT_USER" "$PILOT_DIR"

processors=$(vm_get_mjf total_cpu 2>/dev/null) || processors=$(nproc)
case "$processors" in ''|*[!0-9]*) processors=$(nproc) ;; esac

# DIRAC_OPTS holds extra pilot words from the site (e.g. "-o /X=Y"): split on purpose.
# shellcheck disable=SC2086
runuser -u "$PILOT_USER" -- env \
    X509_USER_PROXY="$PILOT_DIR/etc/grid-security/proxy.pem" X509_CERT_DIR="$X509_CERT_DIR" \
    MACHINEFEATURES="$MACHINEFEATURES" JOBFEATURES="$JOBFEATURES" \
    python3 dirac-pilot.py --debug \
        --setup="$DIRAC_SETUP" --wnVO="$VO" --Name="$CE_NAME" --Queue="$QUEUE" \
        --CEType=Pool --MaxCycles=1 \
        --pilotUUID="vm://$CE_NAME/$(hostname)" \
        -o "/LocalSite/SubmitPool=$SUBMIT_POOL" \
        -o "/Resources/Computing/CEDefaults/NumberOfProcessors=$processors" \
        -o "/Resources/Computing/CEDefaults/VirtualOrganization=$VO" \
        --cert --certLocation="$PILOT_DIR/etc/grid-security" \
        $DIRAC_OPTS > "$PILOT_DIR/dirac-pilot.log" 2>&1
status=$?
vm_put dirac-pilot.log < "$PILOT_DIR/dirac-pilot.log" || true

message=$(find "$PILOT_DIR" -maxdepth 3 -name shutdown_message -type f -exec head -n 1 {} \; |
          head -n 1)
case "$message" in
    [1-7][0-9][0-9]\ *) vm_finish "${message%% *}" "${message#* }" ;;
esac
if [ "$status" -eq 0 ]; then
    vm_finish 300 "$MSG_300"
fi
vm_finish 600 "$MSG_600 (dirac-pilot.py exited with $status)"
