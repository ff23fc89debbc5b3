# Runs in a fresh copy of the context before the builds.
set -eu
ln -s real.txt tree/ln
ln -s /etc/passwd tree/abs
python3 -c "import os; os.setxattr('xattr.txt', 'user.cairn.test', b'hello')"
