#!/bin/sh
# tsbal installer for Debian and other Linux on x86_64 (amd64) or aarch64 (arm64):
#
#   curl -fsSL <release-url>/install.sh | sh
#
# It downloads tsbal-linux-<arch> and SHA256SUMS from the release directory, verifies the checksum, checks that
# the binary runs here, and moves it into place in one rename, so an existing tsbal is replaced whole or not at
# all. As root with apt, it also installs iproute2 and iputils-arping (the HA engine moves the VIP with `ip` and
# announces it with `arping`).
#
# Environment:
#   TSBAL_BASE_URL    the release directory (holding install.sh, tsbal-linux-* and SHA256SUMS)
#   TSBAL_PREFIX      install to $TSBAL_PREFIX/bin/tsbal (default /usr/local, so /usr/local/bin/tsbal)
#   TSBAL_BINARY      install this local file instead of downloading (offline); it is verified against a
#                     SHA256SUMS beside it, or TSBAL_SHA256SUMS, when there is one
#   TSBAL_NO_DEPS=1   do not install iproute2 and iputils-arping
#
# The script is one function called on its last line, so a download cut short runs nothing.
set -eu

# Filled in by the build from TSBAL_RELEASE_URL (where dist/ is published); TSBAL_BASE_URL overrides it.
TSBAL_DEFAULT_BASE_URL=''

tsbal_install_main() {
  say() { printf 'tsbal-install: %s\n' "$*"; }
  die() {
    printf 'tsbal-install: error: %s\n' "$*" >&2
    exit 1
  }

  os=$(uname -s)
  [ "$os" = Linux ] || die "tsbal runs on Linux; this machine runs $os"
  machine=$(uname -m)
  case "$machine" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "unsupported architecture '$machine': tsbal is built for x86_64 (amd64) and aarch64 (arm64)" ;;
  esac
  asset="tsbal-linux-$arch"

  prefix=${TSBAL_PREFIX:-/usr/local}
  bindir="${prefix%/}/bin"
  dest="$bindir/tsbal"
  user=$(id -un 2>/dev/null || id -u)

  # Refuse before downloading anything: the nearest existing directory on the way to $bindir must be writable.
  if [ "$(id -u)" != 0 ]; then
    probe=$bindir
    while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
    if [ ! -w "$probe" ]; then
      die "cannot install into $bindir as $user (no write access to $probe).
  Run as root:            curl -fsSL <release-url>/install.sh | sudo sh
  or install for yourself: TSBAL_PREFIX=\$HOME/.local sh install.sh"
    fi
  fi

  if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d' ' -f1; }
  elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
  else
    die "neither sha256sum nor shasum is installed (coreutils provides sha256sum)"
  fi

  workdir=$(mktemp -d "${TMPDIR:-/tmp}/tsbal-install.XXXXXX")
  staged=''
  cleanup() {
    rm -rf "$workdir"
    if [ -n "$staged" ]; then rm -f "$staged"; fi
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM HUP

  if [ -n "${TSBAL_BINARY:-}" ]; then
    [ -f "$TSBAL_BINARY" ] || die "TSBAL_BINARY=$TSBAL_BINARY: no such file"
    cp "$TSBAL_BINARY" "$workdir/tsbal" || die "cannot read $TSBAL_BINARY"
    name=$(basename "$TSBAL_BINARY")
    sums=${TSBAL_SHA256SUMS:-$(dirname "$TSBAL_BINARY")/SHA256SUMS}
    if [ -f "$sums" ]; then
      cp "$sums" "$workdir/SHA256SUMS" || die "cannot read $sums"
      source_desc=$TSBAL_BINARY
    else
      say "warning: no SHA256SUMS beside $TSBAL_BINARY; installing it without a checksum check"
      name=''
    fi
  else
    base=${TSBAL_BASE_URL:-$TSBAL_DEFAULT_BASE_URL}
    [ -n "$base" ] || die "set TSBAL_BASE_URL to the release directory (the URL install.sh came from, without /install.sh)"
    base=${base%/}
    if command -v curl >/dev/null 2>&1; then
      fetch() { curl -fsSL --retry 2 -o "$2" "$1"; }
    elif command -v wget >/dev/null 2>&1; then
      fetch() { wget -q -O "$2" "$1"; }
    else
      die "neither curl nor wget is installed: apt-get install curl, or download $asset and SHA256SUMS
  from $base yourself and run: TSBAL_BINARY=/path/to/$asset sh install.sh"
    fi
    say "downloading $base/$asset"
    fetch "$base/SHA256SUMS" "$workdir/SHA256SUMS" || die "download failed: $base/SHA256SUMS"
    fetch "$base/$asset" "$workdir/tsbal" || die "download failed: $base/$asset"
    name=$asset
    source_desc="$base/$asset"
  fi

  if [ -n "$name" ]; then
    expected=$(awk -v f="$name" '$2 == f || $2 == "*" f { print $1; exit }' "$workdir/SHA256SUMS")
    [ -n "$expected" ] || die "SHA256SUMS has no entry for $name; nothing was installed"
    actual=$(sha256 "$workdir/tsbal")
    [ "$expected" = "$actual" ] || die "checksum mismatch for $source_desc
  expected $expected
  got      $actual
  The file is corrupted or was tampered with; nothing was installed."
    say "checksum ok ($name)"
  fi

  mkdir -p "$bindir" || die "cannot create $bindir"
  staged="$bindir/.tsbal.install.$$"
  cp "$workdir/tsbal" "$staged" || die "cannot write $staged"
  chmod 755 "$staged"
  if ! version=$("$staged" --version 2>&1); then
    die "the $asset binary does not run on this machine ($version); nothing was installed"
  fi
  case "$version" in
    "tsbal "*) ;;
    *) die "$staged --version printed '$version', not 'tsbal <version>'; nothing was installed" ;;
  esac
  mv -f "$staged" "$dest" || die "cannot move the new binary to $dest"
  staged=''
  say "installed $version to $dest"

  deps_failed=''
  if [ -z "${TSBAL_NO_DEPS:-}" ] && command -v dpkg-query >/dev/null 2>&1; then
    missing=''
    for package in iproute2 iputils-arping; do
      dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing="$missing $package"
    done
    if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing$missing (ip and arping move the virtual IP)"
      # shellcheck disable=SC2086 # one word per package
      if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; }; then
        deps_failed=$missing
      fi
    elif [ -n "$missing" ]; then
      say "note: the HA engine needs$missing; as root run: apt-get install$missing"
    fi
  fi

  case ":${PATH:-}:" in
    *":$bindir:"*) run=tsbal ;;
    *)
      run=$dest
      say "note: $bindir is not on your PATH"
      ;;
  esac
  echo
  echo "Next step, on each load balancer node (as root):"
  echo "  $run setup --node lb1 --peer lb2 --vip <VIP>/<BITS> --iface eth0 --backend <IP:PORT> --backend <IP:PORT>"
  echo "  (on lb2 the same with --node lb2 --peer lb1, after copying /etc/ha.d/authkeys from lb1; see: $run setup --help)"
  echo "Or try it first:  $run demo"

  if [ -n "$deps_failed" ]; then
    die "tsbal is installed, but apt-get could not install$deps_failed; install them before using the HA engine"
  fi
}

tsbal_install_main "$@"
