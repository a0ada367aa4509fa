#!/usr/bin/env bash
# A Debian 12 base image made from Debian's packages, for machines that
# cannot pull debian:12 from a public registry.
#
#   base-image.sh [--force]     build (or re-import) $SS_DEBIAN_IMAGE (localhost/debian:12)
#
# debootstrap (minbase) of bookworm from $DEBIAN_MIRROR, upgraded from
# bookworm-updates and bookworm-security, then trimmed as debian:12-slim is
# (no docs, man pages or locales; no apt lists).  The root file system is kept
# as a tarball in $SS_CACHE (~/.cache/shipstream) so that a second machine run
# imports it in seconds; delete it (or --force) to make a fresh one.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/podman.sh"
need_podman

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# Bump to make every machine build a new tarball.
VERSION=1
TARBALL="$SS_CACHE/debian-12-minbase-v$VERSION.tar"
FORCE=""
[ "${1:-}" = --force ] && FORCE=1

say() { echo "base-image: $*" >&2; }

if [ -z "$FORCE" ] && podman image exists "$SS_DEBIAN_IMAGE"; then
  say "$SS_DEBIAN_IMAGE exists"
  exit 0
fi

make_rootfs() {
  command -v debootstrap >/dev/null || { say "debootstrap is missing: deploy/local/deps.sh containers"; exit 1; }
  local dir="$SS_CACHE/debian-12-rootfs.$$"
  mkdir -p "$SS_CACHE"
  # shellcheck disable=SC2064
  trap "rm -rf '$dir' '$TARBALL.tmp'" EXIT
  rm -rf "$dir"
  say "debootstrap bookworm (minbase) from $MIRROR into $dir"
  debootstrap --variant=minbase --components=main bookworm "$dir" "$MIRROR" >"$dir.log" 2>&1 ||
    { tail -30 "$dir.log" >&2; say "debootstrap failed (log: $dir.log)"; exit 1; }
  rm -f "$dir.log"
  # What debian:12(-slim) carries: its apt sources, no docs/man/locales, an
  # apt that cleans up after itself.
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  echo 'Acquire::GzipIndexes "true";' >"$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
  say "apt-get upgrade from bookworm-updates and bookworm-security"
  mount --bind /proc "$dir/proc" 2>/dev/null || true
  if ! chroot "$dir" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get -y -qq upgrade >/dev/null && apt-get clean' >&2; then
    umount "$dir/proc" 2>/dev/null || true
    say "apt-get upgrade in the new root failed"; exit 1
  fi
  umount "$dir/proc" 2>/dev/null || true
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/{man,info,groff,lintian,linda}/* "$dir"/usr/share/locale/* \
         "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/var/cache/debconf/*-old \
         "$dir"/var/log/* "$dir"/tmp/* "$dir"/root/.bash_history
  : >"$dir/etc/machine-id"
  echo "debian-bookworm-minbase $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$dir/etc/shipstream-base"
  tar --numeric-owner --xattrs -C "$dir" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$dir"
  trap - EXIT
}

if [ -n "$FORCE" ] || [ ! -s "$TARBALL" ]; then
  t0=$SECONDS
  make_rootfs
  say "root file system in $TARBALL ($(du -h "$TARBALL" | cut -f1), $((SECONDS - t0)) s)"
fi
podman import \
  --change 'CMD ["bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --message "Debian 12 (bookworm) minbase from $TARBALL" \
  "$TARBALL" "$SS_DEBIAN_IMAGE" >/dev/null
say "imported $SS_DEBIAN_IMAGE from $TARBALL"
