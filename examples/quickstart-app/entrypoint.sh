#!/bin/sh
# The snapshot's entrypoint, in the docker-entrypoint.sh style: a command given to the sandbox
# runs as it is (`cairn run IMAGE -- python3 hello.py`); without one, the sandbox stays up.
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
echo "quickstart sandbox ready; run a command in it, e.g. python3 /app/hello.py"
exec sleep infinity
