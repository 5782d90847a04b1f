#!/bin/sh
# Create throwaway secrets so examples/communities.yaml passes `vcyclectl config check`
# and its user_data can be rendered and inspected. NEVER use these for real VMs: the real
# ones come from the communities (tokens, munge key) and the site (certificate).
#   sh examples/machinetypes/make-example-secrets.sh [DIR]     (default: examples/secrets)
set -eu
dir=${1:-$(dirname "$0")/../secrets}
mkdir -p "$dir"
chmod 0700 "$dir"
umask 077
cd "$dir"
[ -s euclid-wg-register.token ] || openssl rand -hex 32 > euclid-wg-register.token
[ -s euclid-munge.key.b64 ] || openssl rand 1024 | base64 -w0 > euclid-munge.key.b64
[ -s vmcondor.idtoken ] || printf 'eyJhbGciOiJIUzI1NiIsImtpZCI6IlBPT0wifQ.%s.example\n' \
    "$(openssl rand -hex 16)" > vmcondor.idtoken
[ -s dune.idtoken ] || printf 'eyJhbGciOiJIUzI1NiIsImtpZCI6IkRVTkUifQ.%s.example\n' \
    "$(openssl rand -hex 16)" > dune.idtoken
if [ ! -s hostcert.pem ] || [ ! -s hostkey.pem ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/O=Example Site/CN=example robot" \
        -keyout hostkey.pem -out hostcert.pem 2>/dev/null
fi
ls -l "$PWD" >&2
