#!/usr/bin/env bash
# Rebuild tomo.bpf.o from tomo.bpf.c (needs clang, llvm-strip, bpftool and a
# kernel with BTF at /sys/kernel/btf/vmlinux). The object is committed so that
# building Tomo needs no clang; tomo.bpf.src.sha256 records which source it was
# built from, and a test checks that it is current.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# vmlinux.h is generated, not committed (5 MB, and CO-RE makes the object
# independent of the kernel it was built against).
bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$tmp/vmlinux.h"
out=${1:-tomo.bpf.o}
# -nostdinc: only vmlinux.h and the vendored libbpf headers (include/).
clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -nostdinc -I"$tmp" -Iinclude \
    -Wall -Werror -c tomo.bpf.c -o "$tmp/tomo.bpf.o"
# Keep BTF (needed for CO-RE), drop DWARF.
llvm-strip -g "$tmp/tomo.bpf.o"
cp "$tmp/tomo.bpf.o" "$out"
if [ "$out" = tomo.bpf.o ]; then
    # The hash is of the inputs that matter: the C source and this script.
    cat tomo.bpf.c build.sh | sha256sum | cut -d' ' -f1 > tomo.bpf.src.sha256
fi
