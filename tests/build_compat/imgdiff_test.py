#!/usr/bin/env python3
"""Hermetic tests of imgdiff.py: layer application (whiteouts, opaque dirs, hardlinks) and the
difference report, on images written here in both formats (docker-archive and OCI layout)."""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imgdiff  # noqa: E402


def layerTar(entries):
    """entries: list of (name, kind, extra) -> uncompressed tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mode = extra.get("mode", 0o644 if kind != "dir" else 0o755)
            info.uid = extra.get("uid", 0)
            info.gid = extra.get("gid", 0)
            info.mtime = extra.get("mtime", 0)
            if "xattrs" in extra:
                info.pax_headers = {"SCHILY.xattr." + k: v for k, v in extra["xattrs"].items()}
            data = None
            if kind == "file":
                data = extra.get("data", b"")
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = extra["target"]
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = extra["target"]
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def writeOci(directory, layers, config_extra, gzip_layers=True):
    os.makedirs(os.path.join(directory, "blobs", "sha256"))

    def put(data):
        d = sha(data)
        with open(os.path.join(directory, "blobs", "sha256", d[7:]), "wb") as f:
            f.write(data)
        return d

    config = {"config": config_extra, "rootfs": {"type": "layers",
                                                 "diff_ids": [sha(l) for l in layers]}}
    layer_descs = []
    for l in layers:
        blob = gzip.compress(l) if gzip_layers else l
        layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": put(blob), "size": len(blob)})
    cfg = json.dumps(config).encode()
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": put(cfg), "size": len(cfg)},
                           "layers": layer_descs}).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "digest": put(manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    with open(os.path.join(directory, "index.json"), "w") as f:
        json.dump(index, f)


def writeDockerArchive(path, layers, config_extra):
    config = json.dumps({"config": config_extra, "rootfs": {
        "type": "layers", "diff_ids": [sha(l) for l in layers]}}).encode()
    with tarfile.open(path, "w") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        names = []
        for i, l in enumerate(layers):
            names.append(f"l{i}/layer.tar")
            add(names[-1], l)
        add("config.json", config)
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["x:latest"],
                                          "Layers": names}]).encode())


BASE = [("etc", "dir", {}), ("etc/passwd", "file", {"data": b"root\n"}),
        ("usr", "dir", {}), ("usr/share", "dir", {}), ("usr/share/man", "dir", {}),
        ("usr/share/man/a", "file", {"data": b"a"}), ("var", "dir", {}),
        ("var/log", "dir", {}), ("var/log/x.log", "file", {"data": b"1"}),
        ("gone", "file", {"data": b"g"})]


class ImgdiffTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def images(self, layers_a, layers_b, cfg_a=None, cfg_b=None):
        self.n = getattr(self, "n", 0) + 1
        a = os.path.join(self.dir, f"a{self.n}.tar")
        b = os.path.join(self.dir, f"b{self.n}-oci")
        writeDockerArchive(a, [layerTar(l) for l in layers_a], cfg_a or {})
        writeOci(b, [layerTar(l) for l in layers_b], cfg_b or {})
        return "docker-archive:" + a, "oci:" + b

    def testIdenticalTreesInBothFormatsHaveNoDifference(self):
        upper = [("./app", "dir", {}), ("./app/x", "file", {"data": b"x", "mtime": 5})]
        other = [("app/", "dir", {}), ("app/x", "file", {"data": b"x", "mtime": 99})]
        a, b = self.images([BASE, upper], [BASE, other], {"Env": ["A=1"]}, {"Env": ["A=1"]})
        self.assertEqual(imgdiff.compareImages(a, b), [])

    def testWhiteoutAndOpaqueDirectoryAreApplied(self):
        upper = [(".wh.gone", "file", {}), ("usr/share/man", "dir", {}),
                 ("usr/share/man/.wh..wh..opq", "file", {}),
                 ("usr/share/man/new", "file", {"data": b"n"})]
        a, _ = self.images([BASE, upper], [BASE])
        model = imgdiff.rootfsModel(imgdiff.readImage(a))
        self.assertNotIn("gone", model)
        self.assertNotIn("usr/share/man/a", model)
        self.assertIn("usr/share/man/new", model)
        self.assertIn("etc/passwd", model)

    def testDifferencesNameThePathAndField(self):
        upper_a = [("f", "file", {"data": b"1", "mode": 0o4755, "uid": 7}),
                   ("l", "symlink", {"target": "f"}), ("only-a", "file", {})]
        upper_b = [("f", "file", {"data": b"2", "mode": 0o755, "uid": 7}),
                   ("l", "symlink", {"target": "g"})]
        a, b = self.images([BASE, upper_a], [BASE, upper_b], {"User": "app", "Cmd": ["x"]},
                           {"User": "root", "Cmd": ["x"]})
        diffs = imgdiff.compareImages(a, b, name_a="buildkit", name_b="cairn")
        self.assertIn('config.User differs: buildkit="app" cairn="root"', diffs)
        self.assertIn("/f: mode differs: buildkit=0o4755 cairn=0o755", diffs)
        self.assertTrue(any(d.startswith("/f: sha256 differs") for d in diffs), diffs)
        self.assertIn("/l: target differs: buildkit=f cairn=g", diffs)
        self.assertIn("/only-a: only in buildkit (file)", diffs)
        self.assertEqual(len(diffs), 5, diffs)

    def testIgnoredPathsAndEmptyConfigValuesDoNotCount(self):
        upper = [("var/log/y.log", "file", {"data": b"2"})]
        a, b = self.images([BASE, upper], [BASE], {"Labels": {}}, {})
        self.assertEqual(imgdiff.compareImages(a, b), [])

    def testHardlinkGroupsCompareBySetOfPaths(self):
        la = [("h", "dir", {}), ("h/a", "file", {"data": b"d"}),
              ("h/b", "hardlink", {"target": "h/a"})]
        lb = [("h", "dir", {}), ("h/b", "file", {"data": b"d"}),
              ("h/a", "hardlink", {"target": "h/b"})]
        lc = [("h", "dir", {}), ("h/a", "file", {"data": b"d"}), ("h/b", "file", {"data": b"d"})]
        a, b = self.images([BASE, la], [BASE, lb])
        self.assertEqual(imgdiff.compareImages(a, b), [])
        a, c = self.images([BASE, la], [BASE, lc])
        diffs = imgdiff.compareImages(a, c)
        self.assertIn("/h/a: group differs: A=['h/a', 'h/b'] B=None", diffs)

    def testXattrsAreCompared(self):
        la = [("x", "file", {"xattrs": {"user.k": "v"}})]
        lb = [("x", "file", {})]
        a, b = self.images([BASE, la], [BASE, lb])
        self.assertEqual(imgdiff.compareImages(a, b), ["/x: xattrs differs: A={'user.k': 'v'} B={}"])

    def testBaseLayerIsTakenFromTheCachedModel(self):
        base_tar = os.path.join(self.dir, "base.tar")
        with open(base_tar, "wb") as f:
            f.write(layerTar(BASE))
        a, b = self.images([BASE, [("z", "file", {})]], [BASE, [("z", "file", {})]])
        self.assertEqual(imgdiff.compareImages(a, b, base_tar=base_tar), [])
        self.assertTrue(os.path.exists(base_tar + ".model.pickle"))
        model = imgdiff.rootfsModel(imgdiff.readImage(a), imgdiff.loadBaseModel(base_tar))
        self.assertIn("etc/passwd", model)

    def testBadInputGetsAClearError(self):
        with self.assertRaisesRegex(ValueError, "expected docker-archive:FILE or oci:DIR"):
            imgdiff.readImage("tar:/nope")
        with self.assertRaisesRegex(ValueError, "not a directory"):
            imgdiff.readImage("oci:" + os.path.join(self.dir, "missing"))
        la = [("b", "hardlink", {"target": "nothing"})]
        a, _ = self.images([la], [la])
        with self.assertRaisesRegex(ValueError, "target not in image"):
            imgdiff.rootfsModel(imgdiff.readImage(a))
        self.assertEqual(imgdiff.main(["docker-archive:" + os.path.join(self.dir, "no.tar"),
                                       "oci:" + self.dir]), 2)


if __name__ == "__main__":
    unittest.main()
