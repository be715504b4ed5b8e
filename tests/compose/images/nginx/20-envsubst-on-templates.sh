#!/bin/sh
# As the official image: /etc/nginx/templates/X.template -> /etc/nginx/conf.d/X, with only
# the environment's variables substituted.
set -e
for template in /etc/nginx/templates/*.template; do
  [ -f "$template" ] || continue
  defined=$(printf '${%s} ' $(env | cut -d= -f1))
  envsubst "$defined" <"$template" >"/etc/nginx/conf.d/$(basename "$template" .template)"
done
