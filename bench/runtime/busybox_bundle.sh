# Sourced by the sandbox-start benchmarks: makes, under $WORK,
#   rootfs/  busybox-static with sh, true, echo and sleep links, and an empty etc/
#   bundle/  `crun spec`'s default config (new namespaces incl. a netns with loopback only, no
#            cgroup limits, read-only root) on that rootfs, running /bin/true without a terminal
# and sets ROOTFS and BUNDLE to them.
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc"
cp "$(command -v busybox)" "$ROOTFS/bin/busybox"
for a in sh true echo sleep; do ln -s busybox "$ROOTFS/bin/$a"; done

BUNDLE=$WORK/bundle
mkdir -p "$BUNDLE"
(cd "$BUNDLE" && crun spec && python3 - "$ROOTFS" <<'PY'
import json, sys
c = json.load(open("config.json"))
c["root"] = {"path": sys.argv[1], "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open("config.json", "w"))
PY
)
