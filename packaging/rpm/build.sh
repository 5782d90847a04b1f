#!/bin/sh
# Build the EL9 RPM (packaging/rpm/vcyclectl.spec) from this checkout:
#   packaging/rpm/build.sh OUTDIR [RPMBUILD-OPTION...]
# On an EL9 build host (python3.11, python3.11-pip, rpm-build): the RPM lands in
# OUTDIR/RPMS/x86_64/. The only network use is `pip wheel` filling the wheelhouse (from pip's
# cache when warm); rpmbuild itself installs from the wheelhouse with --no-index.
# Environment: PYTHON (default python3.11) makes the wheels and the virtualenv; WHEELHOUSE
# (default OUTDIR/wheels) is reused between builds; EXTRAS (default all) picks what goes into
# the virtualenv (the tests use `serve` to stay quick). Options after OUTDIR go to rpmbuild
# (the tests add --nodeps, as Debian's rpm database has no python3.11 package).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [RPMBUILD-OPTION...]" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
shift
python=$(command -v "${PYTHON:-python3.11}")
wheelhouse=${WHEELHOUSE:-$out/wheels}
extras=${EXTRAS:-all}
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$repo/vcyclectl/__init__.py")
mkdir -p "$out/SOURCES" "$wheelhouse"

# The source tarball: tracked and new files, as .gitignore leaves them.
(cd "$repo" && git ls-files -co --exclude-standard | while read -r f; do [ -e "$f" ] && echo "$f"; done) \
    > "$out/SOURCES/files.txt"
tar -C "$repo" -czf "$out/SOURCES/vcyclectl-$version.tar.gz" \
    --transform "s|^|vcyclectl-$version/|" -T "$out/SOURCES/files.txt"

# The wheelhouse: this checkout's wheel and every dependency's (a stale vcyclectl wheel of
# the same version would be picked otherwise).
rm -f "$wheelhouse"/vcyclectl-*.whl
"$python" -m pip wheel -q --disable-pip-version-check --find-links "$wheelhouse" \
    -w "$wheelhouse" "${repo}[$extras]"

rpmbuild -bb --quiet "$@" \
    --define "_topdir $out" --define "_sourcedir $out/SOURCES" \
    --define "version $version" --define "wheelhouse $wheelhouse" \
    --define "venv_python $python" --define "extras $extras" \
    "$repo/packaging/rpm/vcyclectl.spec"
ls "$out"/RPMS/*/vcyclectl-"$version"-*.rpm
