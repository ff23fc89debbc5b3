# Runs in a fresh copy of the context before the builds.
set -eu
chmod 4755 suid-file
chmod 2775 dir
chmod 0600 dir/g
