#!/bin/sh
# As the official image's entrypoint: options or a config file alone run redis-server, and
# redis-server drops root for the redis user. Protected mode is off unless asked for (the
# official image compiles that default in; Debian's build keeps it on).
set -e
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ]; then
  case " $* " in *" --protected-mode "*) ;; *) set -- "$@" --protected-mode no ;; esac
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
