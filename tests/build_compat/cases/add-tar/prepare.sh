# Runs in a fresh copy of the context before the builds.
set -eu
mkdir -p t/sub
echo hi > t/sub/f
echo top > t/top
ln -s sub/f t/link
chmod 700 t/sub
tar --numeric-owner --owner=1000 --group=1000 -cf archive.tar -C t .
tar --numeric-owner --owner=0 --group=0 -czf archive.tar.gz -C t .
rm -rf t
