#!/bin/sh
# vmcondor-admin: the pool administrator's helper on the VMCondor manager (run as root).
#
#   vmcondor-admin worker-token [LIFETIME]   print a new IDTOKEN for the workers (vcyclectl's
#                                            user_data_files idtoken): identity
#                                            vmcondor-worker@POOL, scopes ADVERTISE_STARTD,
#                                            ADVERTISE_MASTER, READ
#   vmcondor-admin user-token USER [LIFETIME] print a token for USER@POOL (READ, WRITE), for a
#                                            user who cannot use `vmcondor token request`
#   vmcondor-admin requests                  pending token requests (condor_token_request_list)
#   vmcondor-admin rotate                    new signing key; new tokens are signed with it,
#                                            old tokens keep working until `retire`
#   vmcondor-admin retire KEY                delete signing key KEY: every token it signed
#                                            stops working at once
#   vmcondor-admin revoke USER               refuse every token of USER@POOL from now on
#
# Users' own requests are approved with the stock tool:
#   condor_token_request_list; condor_token_request_approve -reqid ID
set -eu
: "${CONDOR_CONFIG_DIR:=/etc/condor}"
: "${CONDOR_RECONFIG:=condor_reconfig}"
KEYS="$CONDOR_CONFIG_DIR/passwords.d"
KEYCONF="$CONDOR_CONFIG_DIR/config.d/60-vmcondor-keys.conf"
REVOKED="$CONDOR_CONFIG_DIR/config.d/61-vmcondor-revoked.conf"
DEFAULT_LIFETIME=31536000   # a year: workers are re-created often, rotate the key yearly

pool() {
    sed -n 's/^VMCONDOR_POOL *= *//p' "$CONDOR_CONFIG_DIR/config.d/49-vmcondor-pool.conf"
}

# The key new tokens are signed with (the last `rotate`, or POOL).
issuer() {
    if [ -s "$KEYCONF" ]; then
        sed -n 's/^SEC_TOKEN_ISSUER_KEY *= *//p' "$KEYCONF"
    else
        echo POOL
    fi
}

valid_name() {   # user names: a-z 0-9 . _ -; key names may also be POOL
    case "$1" in
        POOL) [ "${2:-}" = key ] && return 0 ;;
        ''|*[!a-z0-9._-]*) ;;
        *) return 0 ;;
    esac
    echo "vmcondor-admin: bad name '$1' (a-z 0-9 . _ -)" >&2
    exit 2
}

write_keyconf() {   # write_keyconf ISSUER ALLOWED...
    issuer_key=$1
    shift
    tmp="$KEYCONF.tmp"
    {
        echo "# Written by vmcondor-admin: the signing key new tokens get, and every key"
        echo "# still accepted for issuing."
        echo "SEC_TOKEN_ISSUER_KEY = $issuer_key"
        echo "SEC_TOKEN_FETCH_ALLOWED_SIGNING_KEYS = $*"
    } > "$tmp"
    mv "$tmp" "$KEYCONF"
}

keys_present() {
    for f in "$KEYS"/*; do
        [ -f "$f" ] && basename "$f"
    done
    return 0
}

case "${1:-}" in
    worker-token)
        condor_token_create -identity "vmcondor-worker@$(pool)" -key "$(issuer)" \
            -authz ADVERTISE_STARTD -authz ADVERTISE_MASTER -authz READ \
            -lifetime "${2:-$DEFAULT_LIFETIME}"
        ;;
    user-token)
        valid_name "${2:-}"
        condor_token_create -identity "$2@$(pool)" -key "$(issuer)" \
            -authz READ -authz WRITE -lifetime "${3:-$DEFAULT_LIFETIME}"
        ;;
    requests)
        condor_token_request_list
        ;;
    rotate)
        new="key-$(date -u +%Y%m%d%H%M%S)"
        (umask 077; openssl rand 64 > "$KEYS/$new")
        # shellcheck disable=SC2046  # one word per key name is intended
        write_keyconf "$new" $(keys_present)
        "$CONDOR_RECONFIG"
        echo "new signing key $new; issue a new worker token (vmcondor-admin worker-token)," >&2
        echo "then, once old workers and user tokens are replaced: vmcondor-admin retire OLD" >&2
        echo "$new"
        ;;
    retire)
        valid_name "${2:-}" key
        [ "$2" != "$(issuer)" ] || { echo "vmcondor-admin: $2 is the current issuer; rotate first" >&2; exit 2; }
        [ -f "$KEYS/$2" ] || { echo "vmcondor-admin: no signing key $2" >&2; exit 4; }
        rm -f "$KEYS/$2"
        # shellcheck disable=SC2046  # one word per key name is intended
        write_keyconf "$(issuer)" $(keys_present)
        "$CONDOR_RECONFIG"
        ;;
    revoke)
        valid_name "${2:-}"
        [ -s "$REVOKED" ] || echo "# Written by vmcondor-admin: tokens refused by this pool." > "$REVOKED"
        # shellcheck disable=SC2016  # $(...) is HTCondor's macro syntax, written as is
        printf 'SEC_TOKEN_REVOCATION_EXPR = $(SEC_TOKEN_REVOCATION_EXPR) || sub =?= "%s@%s"\n' \
            "$2" "$(pool)" >> "$REVOKED"
        "$CONDOR_RECONFIG"
        ;;
    *)
        sed -n '2,20s/^# \{0,1\}//p' "$0" >&2
        exit 2
        ;;
esac
