#!/bin/sh
# As the official image's entrypoint: before nginx starts, run /docker-entrypoint.d/*.sh.
set -e
if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
  for script in /docker-entrypoint.d/*.sh; do
    [ -x "$script" ] && "$script"
  done
fi
exec "$@"
