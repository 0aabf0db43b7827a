#!/usr/bin/env bash
# Make this host run linux/arm64 binaries (and so arm64 containers) under QEMU user emulation.
# Usage: docker/qemu.sh   (root; needs qemu-user-static and binfmt-support: make system-packages)
#   1. mount binfmt_misc on /proc/sys/fs/binfmt_misc unless it is mounted;
#   2. register qemu-aarch64 with binfmt-support's entry (flags F: the interpreter is opened once, at registration,
#      so it runs inside containers that do not have it, and P: argv[0] preserved);
#   3. prove it: the interpreter entry is enabled and has the F flag.
# On an arm64 host nothing is needed. Where the kernel refuses (no CONFIG_BINFMT_MISC, an unprivileged
# container) it stops with an error saying so.
set -euo pipefail
BINFMT=/proc/sys/fs/binfmt_misc
ENTRY="$BINFMT/qemu-aarch64"
PATH="$PATH:/usr/sbin:/sbin"

case "$(uname -m)" in aarch64|arm64) echo ">> qemu: host is arm64, no emulation needed"; exit 0;; esac
if [ -f "$ENTRY" ] && grep -qx enabled "$ENTRY" && grep -q '^flags: .*F' "$ENTRY"; then
  echo ">> qemu: qemu-aarch64 registered ($(grep '^flags' "$ENTRY"))"; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "Error: registering QEMU for arm64 needs root; run: sudo make qemu" >&2; exit 1; }
command -v update-binfmts >/dev/null && [ -x /usr/bin/qemu-aarch64-static ] \
  || { echo "Error: qemu-user-static and binfmt-support are missing; run: make system-packages" >&2; exit 1; }

if [ ! -f "$BINFMT/register" ]; then
  [ -d "$BINFMT" ] || { echo "Error: $BINFMT does not exist: this kernel has no binfmt_misc (CONFIG_BINFMT_MISC), so arm64 binaries cannot run here." >&2; exit 1; }
  if ! err="$(mount -t binfmt_misc binfmt_misc "$BINFMT" 2>&1)"; then
    echo "Error: the kernel refused to mount binfmt_misc on $BINFMT ($err)." >&2
    echo "       In a container this needs --privileged (or CAP_SYS_ADMIN); elsewhere: modprobe binfmt_misc." >&2
    exit 1
  fi
  echo ">> qemu: mounted binfmt_misc on $BINFMT"
fi
if ! err="$(update-binfmts --enable qemu-aarch64 2>&1)"; then
  # The entry is not known to binfmt-support yet (package installed before binfmt-support): import it.
  update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
  err="$(update-binfmts --enable qemu-aarch64 2>&1)" \
    || { echo "Error: update-binfmts --enable qemu-aarch64 failed: $err" >&2; exit 1; }
fi
if [ ! -f "$ENTRY" ] || ! grep -qx enabled "$ENTRY"; then
  echo "Error: the kernel did not accept the qemu-aarch64 binfmt entry ($ENTRY missing or disabled)." >&2; exit 1
fi
grep -q '^flags: .*F' "$ENTRY" \
  || { echo "Error: qemu-aarch64 is registered without the F flag, so containers cannot use it: $(grep '^flags' "$ENTRY")" >&2; exit 1; }
echo ">> qemu: qemu-aarch64 registered ($(grep '^flags' "$ENTRY"); $(qemu-aarch64-static --version | head -1))"
