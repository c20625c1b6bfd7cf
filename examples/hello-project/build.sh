#!/bin/sh
# Builds dist/: a script and the program it runs.
set -e
mkdir -p dist
printf 'console.log("hello from the build");\n' > dist/hello.js
printf '#!/bin/sh\nnode "$(dirname "$0")/hello.js"\n' > dist/run.sh
chmod 755 dist/run.sh
echo "built dist/"
