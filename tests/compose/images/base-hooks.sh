# mmdebstrap --customize-hook for the stand-ins' Debian base ($1 is the new root).
# What Debian's own container images do: no services started by package scripts during a
# build, no recommended packages, no apt lists or caches left in the image.
set -e
printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
chmod 755 "$1/usr/sbin/policy-rc.d"
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$1/etc/apt/apt.conf.d/90standin"
rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin
