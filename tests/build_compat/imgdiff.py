#!/usr/bin/env python3
"""imgdiff: compare two container images' root filesystems and configs.

    imgdiff.py [--base-tar BASE.tar] A B

A and B are `docker-archive:FILE` (what `docker save` writes) or `oci:DIR[:TAG]` (an OCI image
layout, e.g. from `cairn image export`). The layers of each image are applied in memory
(whiteouts and opaque directories as the OCI spec says) into a model of the merged root
filesystem: path -> (type, mode, uid, gid, content digest, link target, xattrs, hardlink group).
mtimes are ignored, and so are /var/cache, /var/log and /var/lib/apt/lists (they depend on when
the build ran). Every difference is printed as one line naming the path or config field; the
exit status is 1 when anything differs.

Layers whose diff_id equals sha256(BASE.tar) are read once from BASE.tar (and cached beside it
as BASE.tar.model.pickle): both builders start from the same base layer, and hashing 170 MB per
image and case would dominate the suite's time.
"""

import gzip
import hashlib
import io
import json
import os
import pickle
import stat
import subprocess
import sys
import tarfile

IGNORED_PREFIXES = ("var/cache/", "var/log/", "var/lib/apt/lists/")
IGNORED_EXACT = {"var/cache", "var/log", "var/lib/apt/lists"}
CONFIG_FIELDS = ["Env", "Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Labels",
                 "Volumes", "StopSignal", "Healthcheck", "Shell", "OnBuild"]


def normPath(name):
    while name.startswith("./") or name.startswith("/"):
        name = name[2:] if name.startswith("./") else name[1:]
    if name == ".":
        return ""
    return name.rstrip("/")


def ignored(path):
    return path in IGNORED_EXACT or path.startswith(IGNORED_PREFIXES)


def openDecompressed(fileobj, media_type=""):
    """Returns a readable stream of the uncompressed tar (gzip, zstd or plain)."""
    head = fileobj.read(4)
    fileobj.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fileobj)
    if head == b"\x28\xb5\x2f\xfd" or media_type.endswith("+zstd"):
        # zstd reads the file descriptor, whose offset the buffered read above moved.
        os.lseek(fileobj.fileno(), 0, os.SEEK_SET)
        data = subprocess.run(["zstd", "-dc"], stdin=fileobj, stdout=subprocess.PIPE,
                              check=True).stdout
        return io.BytesIO(data)
    return fileobj


def applyLayer(model, stream):
    """Applies one layer tar to model (dict path -> entry list)."""
    # Hardlinks inside a layer: group ids are the first path of the group in this layer; the
    # comparison uses the set of paths in a group, so which path came first does not matter.
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            path = normPath(member.name)
            if path == "":
                continue
            base = os.path.basename(path)
            parent = os.path.dirname(path)
            if base == ".wh..wh..opq":
                prefix = parent + "/" if parent else ""
                for p in [p for p in model if p.startswith(prefix) and p != parent]:
                    del model[p]
                continue
            if base.startswith(".wh."):
                victim = os.path.join(parent, base[4:])
                for p in [p for p in model if p == victim or p.startswith(victim + "/")]:
                    del model[p]
                continue
            xattrs = {k[len("SCHILY.xattr."):]: v for k, v in member.pax_headers.items()
                      if k.startswith("SCHILY.xattr.")}
            entry = {"mode": stat.S_IMODE(member.mode), "uid": member.uid, "gid": member.gid,
                     "xattrs": xattrs}
            if member.isdir():
                entry["type"] = "dir"
                old = model.get(path)
                if old is not None and old["type"] != "dir":
                    for p in [p for p in model if p.startswith(path + "/")]:
                        del model[p]
            else:
                for p in [p for p in model if p.startswith(path + "/")]:
                    del model[p]
            if member.isreg():
                entry["type"] = "file"
                f = tar.extractfile(member)
                h = hashlib.sha256()
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
                entry["sha256"] = h.hexdigest()
                entry["size"] = member.size
            elif member.islnk():
                target = normPath(member.linkname)
                src = model.get(target)
                if src is None:
                    raise ValueError(f"hardlink {path} -> {target}: target not in image")
                entry = dict(src)
                group = src.get("group", target)
                src["group"] = group
                entry["group"] = group
            elif member.issym():
                entry["type"] = "symlink"
                entry["target"] = member.linkname
            elif member.ischr() or member.isblk():
                entry["type"] = "chr" if member.ischr() else "blk"
                entry["dev"] = (member.devmajor, member.devminor)
            elif member.isfifo():
                entry["type"] = "fifo"
            elif not member.isdir():
                entry["type"] = "other"
            model[path] = entry


def loadBaseModel(base_tar):
    cache = base_tar + ".model.pickle"
    if os.path.exists(cache) and os.path.getmtime(cache) >= os.path.getmtime(base_tar):
        with open(cache, "rb") as f:
            return pickle.load(f)
    h = hashlib.sha256()
    with open(base_tar, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
    model = {}
    with open(base_tar, "rb") as f:
        applyLayer(model, f)
    result = ("sha256:" + h.hexdigest(), model)
    with open(cache + ".tmp", "wb") as f:
        pickle.dump(result, f)
    os.replace(cache + ".tmp", cache)
    return result


class Image:
    def __init__(self, config, layers):
        self.config = config  # the image config JSON (with "config" and "rootfs")
        self.layers = layers  # list of (diff_id, opener) where opener() -> stream


def readDockerArchive(path):
    tar = tarfile.open(path, "r:")
    manifest = json.load(tar.extractfile("manifest.json"))
    if len(manifest) != 1:
        raise ValueError(f"{path}: expected one image in manifest.json, found {len(manifest)}")
    config = json.load(tar.extractfile(manifest[0]["Config"]))
    diff_ids = config["rootfs"]["diff_ids"]
    layers = []
    for diff_id, name in zip(diff_ids, manifest[0]["Layers"]):
        layers.append((diff_id, lambda n=name: openDecompressed(tar.extractfile(n))))
    return Image(config, layers)


def readOciLayout(spec):
    directory, _, tag = spec.rpartition(":") if not os.path.isdir(spec) else (spec, "", "")
    if not os.path.isdir(directory):
        raise ValueError(f"oci:{spec}: not a directory")

    def blob(digest):
        algo, _, hexd = digest.partition(":")
        return os.path.join(directory, "blobs", algo, hexd)

    with open(os.path.join(directory, "index.json")) as f:
        index = json.load(f)
    manifests = index.get("manifests", [])
    if tag:
        manifests = [m for m in manifests
                     if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
    if len(manifests) != 1:
        raise ValueError(f"oci:{spec}: expected one manifest (tag '{tag}'), found {len(manifests)}")
    desc = manifests[0]
    with open(blob(desc["digest"])) as f:
        manifest = json.load(f)
    if "manifests" in manifest:  # an index: take the first image
        with open(blob(manifest["manifests"][0]["digest"])) as f:
            manifest = json.load(f)
    with open(blob(manifest["config"]["digest"])) as f:
        config = json.load(f)
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(manifest["layers"]):
        raise ValueError(f"oci:{spec}: {len(diff_ids)} diff_ids but "
                         f"{len(manifest['layers'])} layers")
    layers = []
    for diff_id, layer in zip(diff_ids, manifest["layers"]):
        layers.append((diff_id, lambda l=layer: openDecompressed(open(blob(l["digest"]), "rb"),
                                                                 l.get("mediaType", ""))))
    return Image(config, layers)


def readImage(spec):
    if spec.startswith("docker-archive:"):
        return readDockerArchive(spec[len("docker-archive:"):])
    if spec.startswith("oci:"):
        return readOciLayout(spec[len("oci:"):])
    raise ValueError(f"{spec}: expected docker-archive:FILE or oci:DIR[:TAG]")


def rootfsModel(image, base=None):
    model = {}
    for i, (diff_id, opener) in enumerate(image.layers):
        if i == 0 and base is not None and diff_id == base[0]:
            model = {k: dict(v) for k, v in base[1].items()}
            continue
        applyLayer(model, opener())
    # Turn hardlink group ids into the sorted set of paths of the group, which does not
    # depend on which path the builder wrote first.
    groups = {}
    for path, e in model.items():
        if "group" in e:
            groups.setdefault(e["group"], []).append(path)
    for path, e in model.items():
        if "group" in e:
            members = sorted(groups[e["group"]])
            if len(members) > 1:
                e["group"] = members
            else:
                del e["group"]
    return {p: e for p, e in model.items() if not ignored(p)}


def describe(e):
    if e is None:
        return "absent"
    return json.dumps(e, sort_keys=True)


def diffModels(a, b, name_a="A", name_b="B"):
    out = []
    for path in sorted(set(a) | set(b)):
        ea, eb = a.get(path), b.get(path)
        if ea is None or eb is None:
            which = name_b if ea is None else name_a
            e = ea if eb is None else eb
            out.append(f"/{path}: only in {which} ({e['type']})")
            continue
        for key in sorted(set(ea) | set(eb)):
            if ea.get(key) != eb.get(key):
                va, vb = ea.get(key), eb.get(key)
                if key == "mode":
                    va = oct(va) if va is not None else None
                    vb = oct(vb) if vb is not None else None
                out.append(f"/{path}: {key} differs: {name_a}={va} {name_b}={vb}")
    return out


def normalizedConfigField(config, field):
    v = config.get("config", {}).get(field)
    if v in (None, {}, []):
        return None
    return v


def diffConfigs(a, b, name_a="A", name_b="B"):
    out = []
    for field in CONFIG_FIELDS:
        va, vb = normalizedConfigField(a, field), normalizedConfigField(b, field)
        if va != vb:
            out.append(f"config.{field} differs: {name_a}={json.dumps(va)} "
                       f"{name_b}={json.dumps(vb)}")
    return out


def compareImages(spec_a, spec_b, base_tar=None, name_a="A", name_b="B"):
    base = loadBaseModel(base_tar) if base_tar else None
    ia, ib = readImage(spec_a), readImage(spec_b)
    diffs = diffConfigs(ia.config, ib.config, name_a, name_b)
    diffs += diffModels(rootfsModel(ia, base), rootfsModel(ib, base), name_a, name_b)
    return diffs


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base-tar", help="uncompressed base layer tar shared by both images")
    ap.add_argument("--names", default="A,B", help="labels for the two images, e.g. buildkit,cairn")
    ap.add_argument("a")
    ap.add_argument("b")
    args = ap.parse_args(argv)
    name_a, name_b = args.names.split(",", 1)
    try:
        diffs = compareImages(args.a, args.b, args.base_tar, name_a, name_b)
    except (OSError, ValueError, KeyError, tarfile.TarError, subprocess.CalledProcessError) as e:
        print(f"imgdiff: error: {e}", file=sys.stderr)
        return 2
    for d in diffs:
        print(d)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
