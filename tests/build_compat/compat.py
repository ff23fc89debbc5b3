#!/usr/bin/env python3
"""The Cairn-vs-BuildKit comparison suite's driver (see README.md).

    compat.py --work W --cairn BIN setup        base image for both builders, dockerd started
    compat.py --work W --cairn BIN case NAME    build cases/NAME with both and compare
    compat.py --work W --cairn BIN teardown     stop dockerd, unmount what it left

CTest runs setup and teardown as fixtures around the cases, so `ctest -R build_compat.multi`
still gets a base image and a dockerd. Every subprocess has a timeout; the daemon is stopped by
its pid, never by name.
"""

import argparse
import functools
import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, HERE)
import imgdiff  # noqa: E402

BASE_NAME = "compat-base:bookworm"
DOCKER = "/usr/bin/docker"  # Debian's 20.10 client; another `docker` may be earlier on PATH
BUILD_TIMEOUT = 600
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Failure(Exception):
    pass


def log(msg):
    print(f"[compat {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, timeout=BUILD_TIMEOUT, env=None, check=True, cwd=None):
    log("$ " + " ".join(cmd))
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        raise Failure(f"timed out after {timeout}s: {' '.join(cmd)}\n{out[-4000:]}")
    out = p.stdout.decode(errors="replace")
    log(f"  exit {p.returncode} in {time.monotonic() - start:.2f}s")
    if check and p.returncode != 0:
        raise Failure(f"exit {p.returncode}: {' '.join(cmd)}\n{out[-6000:]}")
    return p.returncode, out


class Paths:
    def __init__(self, work, cairn):
        self.work = os.path.abspath(work)
        self.cairn = cairn
        self.testdata = os.path.join(os.path.dirname(self.work), "testdata")
        self.base_tar = os.path.join(self.testdata, "debian-minbase-bookworm.tar")
        self.base_oci = os.path.join(self.work, "base-oci")
        self.cairn_data = os.path.join(self.work, "cairn-data")
        # dockerd's sockets must fit in sun_path (108 bytes): keep them under a short /tmp dir.
        tag = hashlib.sha256(self.work.encode()).hexdigest()[:10]
        self.short = f"/tmp/cairn-compat-{tag}"
        self.sock = os.path.join(self.short, "docker.sock")
        self.exec_root = os.path.join(self.short, "exec")
        self.pidfile = os.path.join(self.short, "dockerd.pid")
        self.data_root = os.path.join(self.work, "docker-data")
        self.out = os.path.join(self.work, "out")
        self.ctx = os.path.join(self.work, "ctx")
        self.cases = os.path.join(HERE, "cases")

    def docker(self, *args):
        return [DOCKER, "-H", "unix://" + self.sock, *args]

    def cairnCmd(self, *args):
        return [self.cairn, "--data-dir", self.cairn_data, *args]


def debianMirror():
    try:
        with open("/etc/apt/sources.list.d/debian.sources") as f:
            for line in f:
                if line.startswith("URIs:"):
                    return line.split()[1]
    except OSError:
        pass
    return "http://deb.debian.org/debian"


def makeBaseTar(p):
    if os.path.exists(p.base_tar):
        return
    os.makedirs(p.testdata, exist_ok=True)
    tmp = p.base_tar + ".partial"
    run(["mmdebstrap", "--variant=minbase", "--format=tar", "bookworm", tmp, debianMirror()],
        timeout=900)
    os.replace(tmp, p.base_tar)


def makeBaseOci(p):
    if os.path.exists(os.path.join(p.base_oci, "index.json")):
        return
    tmp = p.base_oci + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    run(["umoci", "init", "--layout", tmp])
    run(["umoci", "new", "--image", tmp + ":bookworm"])
    run(["umoci", "raw", "add-layer", "--image", tmp + ":bookworm", p.base_tar])
    run(["umoci", "config", "--image", tmp + ":bookworm", "--config.env", PATH_ENV,
         "--config.cmd", "bash"])
    shutil.rmtree(p.base_oci, ignore_errors=True)
    os.rename(tmp, p.base_oci)


def dockerAlive(p):
    if not os.path.exists(p.sock):
        return False
    rc, _ = run(p.docker("version", "--format", "{{.Server.Version}}"), timeout=20, check=False)
    return rc == 0


def startDockerd(p):
    if dockerAlive(p):
        return
    os.makedirs(p.short, exist_ok=True)
    os.makedirs(p.data_root, exist_ok=True)
    logf = open(os.path.join(p.work, "dockerd.log"), "ab")
    subprocess.Popen(["dockerd", "--iptables=false", "-H", "unix://" + p.sock,
                      "--data-root", p.data_root, "--exec-root", p.exec_root,
                      "--pidfile", p.pidfile],
                     stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, start_new_session=True)
    for _ in range(120):
        time.sleep(0.5)
        if dockerAlive(p):
            return
    raise Failure(f"dockerd did not answer on {p.sock} within 60 s; see {p.work}/dockerd.log")


def stopDockerd(p):
    try:
        with open(p.pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        pid = None
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                time.sleep(0.2)
                os.kill(pid, 0)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # dockerd leaves its netns (and sometimes overlay) mounts behind: unmount deepest first.
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    for m in sorted(points, key=len, reverse=True):
        if m.startswith((p.exec_root, p.data_root)):
            subprocess.run(["umount", "-l", m], check=False)
    shutil.rmtree(p.short, ignore_errors=True)


def setup(p):
    os.makedirs(p.work, exist_ok=True)
    makeBaseTar(p)
    makeBaseOci(p)
    imgdiff.loadBaseModel(p.base_tar)
    startDockerd(p)
    rc, _ = run(p.docker("image", "inspect", BASE_NAME), timeout=30, check=False)
    if rc != 0:
        archive = os.path.join(p.work, "base.docker.tar")
        if os.path.exists(archive):
            os.remove(archive)
        run(["skopeo", "copy", "oci:" + p.base_oci + ":bookworm",
             "docker-archive:" + archive + ":" + BASE_NAME])
        run(p.docker("load", "-i", archive))
        os.remove(archive)
    rc, _ = run(p.cairnCmd("image", "inspect", BASE_NAME), timeout=60, check=False)
    if rc != 0:
        run(p.cairnCmd("image", "import", "oci:" + p.base_oci + ":bookworm", BASE_NAME))


def teardown(p):
    stopDockerd(p)
    shutil.rmtree(p.out, ignore_errors=True)
    shutil.rmtree(p.ctx, ignore_errors=True)


class Server:
    """Serves a case's serve/ directory on 127.0.0.1:<free port> for ADD <url>."""

    def __init__(self, directory):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
        handler.log_message = lambda *a, **k: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def prepareContext(p, name, case_dir):
    ctx = os.path.join(p.ctx, name)
    shutil.rmtree(ctx, ignore_errors=True)
    os.makedirs(p.ctx, exist_ok=True)
    src = os.path.join(case_dir, "context")
    if os.path.isdir(src):
        shutil.copytree(src, ctx, symlinks=True)
    else:
        os.makedirs(ctx)
    prep = os.path.join(case_dir, "prepare.sh")
    if os.path.exists(prep):
        run(["sh", prep], cwd=ctx, timeout=60)
    return ctx


def errorLines(out):
    """The lines of a build's output that report its failure (not the echoed Dockerfile)."""
    return "\n".join(l for l in out.splitlines()
                     if l.lower().lstrip().startswith(("error", "failed", "executor failed")))


def buildArgs(spec, subst):
    args = []
    for k, v in spec.get("build_args", {}).items():
        for a, b in subst.items():
            v = v.replace(a, b)
        args += ["--build-arg", f"{k}={v}"]
    if spec.get("target"):
        args += ["--target", spec["target"]]
    return args


def checkExpectations(label, image_spec, spec, base_tar):
    problems = []
    img = imgdiff.readImage(image_spec)
    for field, want in spec.get("expect_config", {}).items():
        got = imgdiff.normalizedConfigField(img.config, field)
        if got != want:
            problems.append(f"{label}: config.{field} = {json.dumps(got)}, "
                            f"expected {json.dumps(want)}")
    files = spec.get("expect_files", {})
    if files:
        model = imgdiff.rootfsModel(img, imgdiff.loadBaseModel(base_tar))
        for path, want in files.items():
            e = model.get(path.lstrip("/"))
            if want.get("type") == "absent":
                if e is not None:
                    problems.append(f"{label}: {path} exists ({e['type']}), expected absent")
                continue
            if e is None:
                problems.append(f"{label}: {path} is missing")
                continue
            for key, v in want.items():
                if key == "content":
                    digest = hashlib.sha256(v.encode()).hexdigest()
                    if e.get("sha256") != digest:
                        problems.append(f"{label}: {path} content differs from "
                                        f"{json.dumps(v)}")
                elif key == "mode":
                    if e.get("mode") != int(v, 8):
                        problems.append(f"{label}: {path} mode {oct(e.get('mode', 0))}, "
                                        f"expected {v}")
                elif e.get(key) != v:
                    problems.append(f"{label}: {path} {key} = {e.get(key)!r}, expected {v!r}")
    return problems


def runCase(p, name, only=None):
    case_dir = os.path.join(p.cases, name)
    if not os.path.isdir(case_dir):
        raise Failure(f"no case directory {case_dir}")
    spec = {}
    if os.path.exists(os.path.join(case_dir, "case.json")):
        with open(os.path.join(case_dir, "case.json")) as f:
            spec = json.load(f)
    use_buildkit = spec.get("buildkit", True) and only != "cairn"
    ctx = prepareContext(p, name, case_dir)
    os.makedirs(p.out, exist_ok=True)
    dockerfile = os.path.join(case_dir, "Dockerfile")
    server = Server(os.path.join(case_dir, "serve")) if os.path.isdir(
        os.path.join(case_dir, "serve")) else None
    subst = {"{url}": server.url if server else ""}
    tag = f"compat-{name}:latest"
    problems = []
    try:
        bk_out = os.path.join(p.out, name + ".buildkit.tar")
        cairn_out = os.path.join(p.out, name + ".cairn-oci")
        if use_buildkit:
            # BuildKit would fetch docker/dockerfile:1 from Docker Hub for a syntax directive;
            # this machine has no Hub, so its copy of the Dockerfile drops the directive.
            with open(dockerfile) as f:
                lines = f.read().splitlines(keepends=True)
            lines = [l for l in lines if not l.lower().replace(" ", "").startswith("#syntax=")]
            bk_file = os.path.join(p.ctx, name + ".buildkit.Dockerfile")
            with open(bk_file, "w") as f:
                f.writelines(lines)
            env = dict(os.environ, DOCKER_BUILDKIT="1")
            rc, out = run(p.docker("build", "--no-cache", "--network=host", "--progress=plain",
                                   "-f", bk_file,
                                   "-t", tag, *buildArgs(spec, subst), ctx),
                          env=env, check=False)
            if "expect_error" in spec:
                if rc == 0:
                    problems.append("buildkit: build succeeded, expected a failure")
                elif spec.get("buildkit_error") and spec["buildkit_error"] not in errorLines(out):
                    problems.append(f"buildkit: error output lacks "
                                    f"{spec['buildkit_error']!r}:\n{out[-2000:]}")
            elif rc != 0:
                raise Failure(f"buildkit build of {name} failed:\n{out[-4000:]}")
            else:
                if os.path.exists(bk_out):
                    os.remove(bk_out)
                run(p.docker("save", "-o", bk_out, tag), timeout=300)
        if only == "buildkit":
            if use_buildkit and "expect_error" not in spec:
                problems += checkExpectations("buildkit", "docker-archive:" + bk_out, spec,
                                              p.base_tar)
            return problems
        rc, out = run(p.cairnCmd("build", "--no-cache", "--network", spec.get("network", "host"), "-f",
                                 dockerfile, "-t", tag, *buildArgs(spec, subst), ctx),
                      check=False)
        if "expect_error" in spec:
            if rc == 0:
                problems.append("cairn: build succeeded, expected a failure")
            else:
                # A list: every piece must be there (e.g. the Dockerfile line and the exit code).
                wanted = spec["expect_error"]
                for piece in wanted if isinstance(wanted, list) else [wanted]:
                    if piece not in errorLines(out):
                        problems.append(f"cairn: error output lacks {piece!r}:\n{out[-2000:]}")
            return problems
        if rc != 0:
            raise Failure(f"cairn build of {name} failed:\n{out[-4000:]}")
        shutil.rmtree(cairn_out, ignore_errors=True)
        run(p.cairnCmd("image", "export", tag, "oci:" + cairn_out), timeout=300)
        cairn_spec = "oci:" + cairn_out
        problems += checkExpectations("cairn", cairn_spec, spec, p.base_tar)
        if use_buildkit:
            problems += checkExpectations("buildkit", "docker-archive:" + bk_out, spec,
                                          p.base_tar)
            diffs = imgdiff.compareImages("docker-archive:" + bk_out, cairn_spec, p.base_tar,
                                          "buildkit", "cairn")
            problems += [d for d in diffs if d not in spec.get("known_differences", [])]
        return problems
    finally:
        if server:
            server.close()
        if use_buildkit:
            run(p.docker("rmi", "-f", tag), timeout=60, check=False)
        for path in (os.path.join(p.out, name + ".buildkit.tar"),):
            if os.path.exists(path):
                os.remove(path)
        shutil.rmtree(os.path.join(p.out, name + ".cairn-oci"), ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--cairn", required=True)
    ap.add_argument("command", choices=["setup", "case", "teardown", "list"])
    ap.add_argument("name", nargs="?")
    ap.add_argument("--only", choices=["buildkit", "cairn"],
                    help="build with one builder and check only the case's expectations")
    args = ap.parse_args()
    p = Paths(args.work, args.cairn)
    try:
        if args.command == "list":
            print("\n".join(sorted(os.listdir(p.cases))))
            return 0
        if args.command == "case" and not args.name:
            print("compat: case needs a NAME (see `list`)", file=sys.stderr)
            return 2
        if os.geteuid() != 0:
            print("compat: needs root (dockerd, mounts); CI runs as root", file=sys.stderr)
            return 2
        if args.command == "setup":
            setup(p)
        elif args.command == "teardown":
            teardown(p)
        else:
            problems = runCase(p, args.name, args.only)
            if problems:
                print(f"FAIL {args.name}: {len(problems)} difference(s):")
                for pr in problems:
                    print("  " + pr)
                return 1
            print(f"PASS {args.name}")
    except Failure as e:
        print(f"FAIL: {e}")
        return 1
    except (OSError, ValueError, KeyError, subprocess.CalledProcessError) as e:
        print(f"FAIL: reading or comparing the images: {e!r}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
