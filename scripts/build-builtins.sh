#!/usr/bin/env bash
# Compile the launcher's loadable bash builtins (drypipe_rename, drypipe_rmdir).
# Optional: without them the launcher falls back to mv/rmdir (one fork each, slower).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
src=$here/drypipe/runtime/bash_builtins.c
out=$here/drypipe/runtime/bash_builtins.so
inc=
for d in /usr/lib/bash /usr/include/bash; do [[ -f $d/loadables.h ]] && inc=$d; done
if [[ -z $inc ]] || ! command -v gcc >/dev/null; then
  echo "build-builtins: bash-builtins headers or gcc missing; the launcher will use mv (slower)" >&2
  exit 0
fi
gcc -O2 -shared -fPIC -I"$inc" -I/usr/include/bash -I/usr/include/bash/include \
    -I/usr/include/bash/builtins -o "$out.tmp" "$src" && mv -f "$out.tmp" "$out" \
  && bash -c "enable -f '$out' drypipe_rename drypipe_rmdir drypipe_mkdir" \
  && echo "build-builtins: $out" >&2
