#!/bin/sh
# A shipped configuration passes --check once its secrets exist. They are not
# shipped (everyone makes their own: endproxy --new-secret FILE, middleproxy
# --new-token FILE), so this copies the configuration's folder, makes the
# keys it names there, and checks the copy.
# usage: check_shipped_config.sh BINARY CONFIG.yaml
set -eu
binary=$1
config=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp -R "$(dirname "$config")"/. "$dir"/
# Keys named on lines that are not comments, as "key: file" or "{... key: file}".
for kind in secret token; do
  for f in $(grep -v '^[[:space:]]*#' "$dir"/*.yaml | grep -o "${kind}_file:[[:space:]]*[^[:space:],}#]*" |
             sed "s/${kind}_file:[[:space:]]*//" | sort -u); do
    [ -e "$dir/$f" ] || "$binary" --new-$kind "$dir/$f" >/dev/null
  done
done
exec "$binary" --check -c "$dir/$(basename "$config")"
