#!/usr/bin/env bash
# Cross-compiles the test binaries of every package for linux/arm64 and runs
# them under qemu-user, so the NEON kernels (ops, neon kernel set) and
# everything above them are tested on a machine without arm64 hardware.
#
#   scripts/test_arm64.sh [--all] [--full] [--tags TAGS] [--pkgs 'PATTERN ...'] [--run REGEXP]
#
#   --all     include graph and demo (see below)
#   --full    run without -test.short (see below)
#   --tags    build tags, e.g. purego (runs the generic kernels instead)
#   --pkgs    go list patterns (default ./... less graph and demo)
#   --run     only tests matching REGEXP
#
# Installs qemu-user with apt-get when qemu-aarch64 is missing. Each test
# binary runs in its package directory, as `go test` would run it. Exits
# non-zero if any package fails. Measured on a shared 2-core x86 machine
# (load ~4), times under qemu: the default set (-test.short) about 70 s
# (ops 30 s, loader 14 s, cmd 6 s, server 6 s, runtime 5 s) plus the builds.
# Without -test.short cmd/convlstm-run takes 17 min (the demo on the real
# model) and ops 36 s; graph (node suite, whole models) takes 280 s even
# with -test.short and demo 240 s without it, so those two run only with
# --all or --pkgs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHORT=(-test.short)
TAGS=()
PKGS=
ALL=0
RUN=()
while [ $# -gt 0 ]; do
	case "$1" in
	--all) ALL=1 ;;
	--full) SHORT=() ;;
	--tags) TAGS=(-tags "${2:?--tags needs a value}"); shift ;;
	--pkgs) PKGS=${2:?--pkgs needs a value}; shift ;;
	--run) RUN=(-test.run "${2:?--run needs a value}"); shift ;;
	-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "test_arm64.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done

if ! command -v qemu-aarch64 >/dev/null; then
	echo "test_arm64: installing qemu-user" >&2
	SUDO=
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null
fi

BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
cd "$ROOT"
MODULE=$(go list -m)
if [ -z "$PKGS" ]; then
	PKGS=./...
	if [ $ALL = 0 ]; then
		PKGS=$(go list "${TAGS[@]}" ./... | grep -v -x -e "$MODULE/graph" -e "$MODULE/demo")
	fi
fi
fail=0
# shellcheck disable=SC2086 # PKGS is a list of patterns
for pkg in $(go list "${TAGS[@]}" $PKGS); do
	dir=$(go list "${TAGS[@]}" -f '{{.Dir}}' "$pkg")
	name=${pkg#"$MODULE"}
	name=${name#/}
	name=${name:-.}
	exe="$BIN/$(echo "$name" | tr / _).test"
	if ! GOOS=linux GOARCH=arm64 go test "${TAGS[@]}" -c -o "$exe" "$pkg" >/dev/null; then
		echo "FAIL $name (build)"
		fail=1
		continue
	fi
	[ -f "$exe" ] || { echo "---- $name: no tests"; continue; }
	start=$(date +%s)
	if (cd "$dir" && qemu-aarch64 "$exe" "${SHORT[@]}" "${RUN[@]}" >"$BIN/out" 2>&1); then
		echo "ok   $name ($(($(date +%s) - start)) s under qemu-aarch64)"
	else
		echo "FAIL $name ($(($(date +%s) - start)) s under qemu-aarch64):"
		tail -40 "$BIN/out"
		fail=1
	fi
done
exit $fail
