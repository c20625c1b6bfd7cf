#!/bin/sh
# A stand-in for `npm ci`: fetches each dependency named in deps.txt into vendor/, one second
# each, unless vendor/ (restored from the cache) already holds this very list.
set -e
if [ -f vendor/.deps.txt ] && cmp -s deps.txt vendor/.deps.txt; then
  echo "dependencies up to date: $(ls vendor | wc -l) from the cache"
  exit 0
fi
rm -rf vendor && mkdir vendor
while read -r dep; do
  echo "fetching $dep"
  sleep 1
  printf 'module.exports = "%s";\n' "$dep" > "vendor/$dep.js"
done < deps.txt
cp deps.txt vendor/.deps.txt
