#!/bin/sh
# Builds dist/: the program and its vendored dependencies.
set -e
rm -rf dist && mkdir dist
cp -R vendor dist/vendor
printf 'console.log("hello from the build");\n' > dist/hello.js
echo "built dist/ with $(ls vendor | wc -l) dependencies"
