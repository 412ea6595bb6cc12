#!/usr/bin/env bash
# Builds the Debian package of everything the workspace ships: pam_mfa.so, mfa-radiusd,
# mfa-portal, mfactl, the conffile, the systemd units, the pam-auth-update profile, man pages, shell
# completion, docs and example PAM stacks (docs/PACKAGING.md says what goes where).
#
#   scripts/build-deb.sh [--debug] [--no-build] [--out DIR]
#
#   --debug      package the dev-profile binaries (target/debug): what the package test
#                uses, to skip a release build. Default: cargo build --release.
#   --no-build   do not run cargo; package what is already built for that profile.
#   --out DIR    where the .deb goes (default target/debian). Its path is printed last.
#
#   DEBFULLNAME, DEBEMAIL   the Maintainer (as dch reads them). Unset: a placeholder, with a
#                           warning: set them for a package you distribute.
#
# Why dpkg-deb and not the cargo deb plugin: the cargo deb plugin is not a Debian package, and installing it
# from crates.io means a ~6-minute release build on the CI machine (measured: 5m48s on two
# cores) before every fresh run; dpkg-deb and dpkg-shlibdeps come with dpkg-dev, which
# build-essential already installs. Writing the tree ourselves also keeps the exact modes
# (conffile 0640, state directory 0700 from postinst) and the maintainer scripts in view.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

profile=release
build=1
out="$top/target/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) profile=debug ;;
        --no-build) build=0 ;;
        --out) out=$2; shift ;;
        --out=*) out=${1#--out=} ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture strip gzip; do
    command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool not found (apt-get install dpkg-dev binutils)" >&2; exit 2; }
done

if [ "$build" = 1 ]; then
    flags=(--locked -p mfactl -p mfa-radiusd -p mfa-portal -p pam_mfa)
    [ "$profile" = release ] && flags+=(--release)
    cargo build "${flags[@]}"
fi
bin="$top/target/$profile"
for f in mfactl mfa-radiusd mfa-portal; do
    [ -f "$bin/$f" ] || { echo "build-deb.sh: $bin/$f is not built" >&2; exit 2; }
done
# `cargo build` puts the module in target/PROFILE; a plain `cargo test` may leave the newer
# one in target/PROFILE/deps only. The newer of the two is the current one.
module=$(ls -t "$bin/libpam_mfa.so" "$bin/deps/libpam_mfa.so" 2>/dev/null | head -n 1)
[ -n "$module" ] || { echo "build-deb.sh: libpam_mfa.so is not built in $bin" >&2; exit 2; }

# The Maintainer: whoever builds a package to distribute sets it (docs/PACKAGING.md).
if [ -n "${DEBEMAIL:-}" ]; then
    maintainer="${DEBFULLNAME:-${DEBEMAIL%%@*}} <$DEBEMAIL>"
else
    maintainer="MFA maintainers <mfa@example.org>"
    echo "build-deb.sh: warning: Maintainer is the placeholder $maintainer; set DEBEMAIL (and DEBFULLNAME) for a package you distribute" >&2
fi
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
version=$("$bin/mfactl" --version | awk '{print $2}')
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
src="$top/packaging/deb"

work=$(mktemp -d "${TMPDIR:-/tmp}/mfa-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
umask 022

d() { install -d -m 0755 "$root/$1"; }
d DEBIAN
d "usr/lib/$multiarch/security"
d usr/sbin
d etc/mfa
d etc/pam.d
d lib/systemd/system
d usr/share/pam-configs
d usr/share/man/man5
d usr/share/man/man8
d usr/share/bash-completion/completions
d usr/share/zsh/vendor-completions
d usr/share/fish/vendor_completions.d
d usr/share/doc/mfa/examples/pam.d
d usr/share/doc/mfa/examples/sshd_config.d

# Binaries, stripped as dh_strip does.
strip_to() { install -m "$1" "$2" "$3"; strip --strip-unneeded --remove-section=.comment --remove-section=.note "$3"; }
strip_to 0644 "$module" "$root/usr/lib/$multiarch/security/pam_mfa.so"
strip_to 0755 "$bin/mfactl" "$root/usr/sbin/mfactl"
strip_to 0755 "$bin/mfa-radiusd" "$root/usr/sbin/mfa-radiusd"
strip_to 0755 "$bin/mfa-portal" "$root/usr/sbin/mfa-portal"

# The conffile: root:root 0640 (dpkg-deb --root-owner-group), commented, enforcing nothing.
install -m 0640 "$src/mfa.toml" "$root/etc/mfa/mfa.toml"
install -m 0644 "$src/mfa-radiusd.service" "$src/mfa-portal.service" "$root/lib/systemd/system/"
install -m 0644 "$src/pam-configs/mfa" "$root/usr/share/pam-configs/mfa"
# The PAM services of the daemon's first factor and the portal's sign-in (conffiles): without
# them PAM falls back to /etc/pam.d/other.
install -m 0644 "$src/pam.d/mfa-radius" "$src/pam.d/mfa-portal" "$root/etc/pam.d/"

# Man pages: mfactl's from its clap definitions, the rest written by hand.
"$root/usr/sbin/mfactl" generate-man "$root/usr/share/man/man8"
install -m 0644 "$src/man/pam_mfa.8" "$src/man/mfa-radiusd.8" "$src/man/mfa-portal.8" "$root/usr/share/man/man8/"
install -m 0644 "$src/man/mfa.toml.5" "$root/usr/share/man/man5/"
chmod 0644 "$root"/usr/share/man/man8/*
find "$root/usr/share/man" -type f -exec gzip -9n {} +

# Completion, from the clap definitions too.
"$root/usr/sbin/mfactl" completion bash > "$root/usr/share/bash-completion/completions/mfactl"
"$root/usr/sbin/mfactl" completion zsh > "$root/usr/share/zsh/vendor-completions/_mfactl"
"$root/usr/sbin/mfactl" completion fish > "$root/usr/share/fish/vendor_completions.d/mfactl.fish"

# Docs and examples.
doc="$root/usr/share/doc/mfa"
install -m 0644 README.md docs/CONFIG.md docs/PAM.md docs/RADIUS.md docs/PACKAGING.md docs/OPERATIONS.md docs/RULES.md "$doc/"
install -m 0644 "$src/copyright" "$doc/copyright"
# The production example (the repository's examples/mfa.toml is the demo's, with a store
# under ../demo and an inline secret).
install -m 0644 "$src/mfa.example.toml" "$doc/examples/mfa.toml"
install -m 0644 examples/pam.d/* "$doc/examples/pam.d/"
install -m 0644 examples/sshd_config.d/* "$doc/examples/sshd_config.d/"
{
    printf 'mfa (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Upstream release %s; see the upstream history.\n\n' "$version"
    printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} > "$doc/changelog"
# As dh_compress: the changelog and documents over 4 KiB (not the copyright).
gzip -9n "$doc/changelog"
find "$doc" -type f -size +4k ! -name copyright ! -name '*.gz' ! -path '*/examples/*' -exec gzip -9n {} +

install -d -m 0755 "$root/usr/share/lintian/overrides"
install -m 0644 "$src/lintian-overrides" "$root/usr/share/lintian/overrides/mfa"

# Maintainer scripts and control files.
install -m 0755 "$src/postinst" "$src/prerm" "$src/postrm" "$src/config" "$root/DEBIAN/"
# The debconf question of postrm purge (keep the store?), asked by config.
install -m 0644 "$src/templates" "$root/DEBIAN/templates"
printf '%s\n' /etc/mfa/mfa.toml /etc/pam.d/mfa-portal /etc/pam.d/mfa-radius > "$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"

# Depends: what the binaries link against (dpkg-shlibdeps wants a debian/control to sit in).
mkdir -p "$work/src/debian"
printf 'Source: mfa\n\nPackage: mfa\nArchitecture: any\n' > "$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O -e"$root/usr/sbin/mfactl" -e"$root/usr/sbin/mfa-radiusd" -e"$root/usr/sbin/mfa-portal" \
    -e"$root/usr/lib/$multiarch/security/pam_mfa.so" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
case "$shlibs" in *libpam0g*) ;; *) shlibs="${shlibs:+$shlibs, }libpam0g" ;; esac
depends="$shlibs, libpam-runtime (>= 1.0.1-6), debconf (>= 0.5) | debconf-2.0"

(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    -e "s|@MAINTAINER@|$maintainer|" "$src/control.in" > "$root/DEBIAN/control"

# Timestamps for a reproducible archive.
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb="$out/mfa_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
