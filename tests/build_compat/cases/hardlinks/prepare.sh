# Runs in a fresh copy of the context before the builds.
set -eu
mkdir linked
echo same > linked/one
ln linked/one linked/two
