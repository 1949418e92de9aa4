"""The Dockerfile, checked without a Docker engine: its shape (multi-stage,
Debian, slim runtime, numeric non-root USER, the chart's paths), its build
stage run on the host against exactly the context .dockerignore lets
through, and its runtime package list against the shared libraries the
installed binaries need (ldd + dpkg -S): every one covered, none extra."""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import unittest

from chartlib import BUILD, REPO, adapter_dir, render, run, tmpdir, write

DOCKERFILE = os.path.join(REPO, "Dockerfile")
DOCKERIGNORE = os.path.join(REPO, ".dockerignore")
SKIP_BUILD = os.environ.get("SMI_HELM_SKIP_IMAGE_BUILD") == "1"


# --- Dockerfile parsing ----------------------------------------------------------

def instructions():
    """[(stage index, INSTRUCTION, argument text)], continuations joined."""
    with open(DOCKERFILE) as f:
        lines = f.read().splitlines()
    out, buf, stage = [], "", -1
    for line in lines:
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        out.append((stage, word, rest.strip()))
        buf = ""
    return out


def args_defaults():
    return {k: v for st, w, a in instructions() if w == "ARG" and st == -1 for k, _, v in [a.partition("=")]}


def expand(text):
    for k, v in args_defaults().items():
        text = text.replace("${%s}" % k, v).replace("$" + k, v)
    return text


def stage_of(name_or_index):
    ins = instructions()
    froms = [(st, a) for st, w, a in ins if w == "FROM"]
    if isinstance(name_or_index, int):
        idx = froms[name_or_index][0]
    else:
        (idx,) = [st for st, a in froms if a.lower().endswith(" as " + name_or_index)]
    return [(w, a) for st, w, a in ins if st == idx]


def apt_packages(stage):
    pkgs = []
    for w, a in stage:
        if w != "RUN":
            continue
        for cmd in re.split(r"&&|;", a):
            toks = shlex.split(cmd)
            if "apt-get" in toks and "install" in toks:
                pkgs += [t for t in toks[toks.index("install") + 1:] if not t.startswith("-")]
    return pkgs


# --- .dockerignore, with Docker's semantics (moby/patternmatcher) ---------------

def _pattern_regex(pat):
    out, i = "", 0
    while i < len(pat):
        c = pat[i]
        if c == "*":
            if pat[i:i + 2] == "**":
                i += 2
                if pat[i:i + 1] == "/":
                    out += "(.*/)?"
                    i += 1
                else:
                    out += ".*"
                continue
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pat.index("]", i)
            out += pat[i:j + 1]
            i = j
        else:
            out += re.escape(c)
        i += 1
    return re.compile("^" + out + "$")


def dockerignore_rules():
    rules = []
    with open(DOCKERIGNORE) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            pat = os.path.normpath(line[1:] if neg else line).lstrip("/")
            rules.append((_pattern_regex(pat), neg))
    return rules


def excluded(rel, rules):
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for rx, neg in rules:
        if any(rx.match(p) for p in prefixes):
            result = not neg
    return result


def build_context(dest):
    """Copies what `docker build .` would send (regular files and links)."""
    rules = dockerignore_rules()
    sent = []
    for root, dirs, files in os.walk(REPO):
        rel_root = os.path.relpath(root, REPO)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            rel = os.path.normpath(os.path.join(rel_root, name))
            if excluded(rel, rules):
                continue
            src, dst = os.path.join(REPO, rel), os.path.join(dest, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy2(src, dst)
            sent.append(rel)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
    return sent


# --- shared libraries -> Debian packages --------------------------------------------

def needed(binary):
    out = run(["objdump", "-p", binary]).stdout
    return re.findall(r"^\s*NEEDED\s+(\S+)", out, re.M)


def ldd(binary):
    """{soname: resolved path} of everything the binary loads."""
    libs = {}
    for line in run(["ldd", binary]).stdout.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            if m.group(2) == "not":
                raise AssertionError(f"{binary}: {m.group(1)} not found")
            libs[m.group(1)] = m.group(2)
    return libs


def package_of(path):
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/lib"):
            candidates.append("/usr" + p)
        elif p.startswith("/usr/lib"):
            candidates.append(p[len("/usr"):])
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].strip()
    raise AssertionError(f"no Debian package owns {path}")


def depends_closure(pkgs):
    """Installed packages reachable through Depends/Pre-Depends."""
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", p], capture_output=True, text=True)
        if r.returncode != 0:
            continue
        seen.add(p)
        for dep in r.stdout.split(","):
            for alt in dep.split("|"):
                name = alt.strip().split(" ")[0].split(":")[0]
                if name:
                    todo.append(name)
    return seen


class Shape(unittest.TestCase):
    def test_stages(self):
        froms = [expand(a) for _, w, a in instructions() if w == "FROM"]
        self.assertEqual(len(froms), 2, froms)
        self.assertRegex(froms[0], r"^debian:bookworm\s+AS\s+build$")
        self.assertEqual(froms[1], "debian:bookworm-slim")

    def test_runtime_stage(self):
        rt = stage_of(1)
        users = [a for w, a in rt if w == "USER"]
        self.assertTrue(users, "the runtime stage sets USER")
        uid = users[-1].split(":")[0]
        self.assertTrue(uid.isdigit() and int(uid) != 0, "numeric non-root UID (runAsNonRoot can check it)")
        # The chart's runAsUser is the image's user.
        pod = render().deployment()["spec"]["template"]["spec"]
        self.assertEqual(pod["securityContext"]["runAsUser"], int(uid))
        (entry,) = [a for w, a in rt if w == "ENTRYPOINT"]
        self.assertEqual(json.loads(entry), ["/usr/bin/smi-metrics"], "exec (JSON) form")
        (cmd,) = [a for w, a in rt if w == "CMD"]
        self.assertEqual(json.loads(cmd), render().container()["args"], "CMD = the chart's args")
        pkgs = apt_packages(rt)
        self.assertFalse([p for p in pkgs if p.endswith("-dev")], "no -dev packages at runtime")
        run_text = " ".join(a for w, a in rt if w == "RUN")
        self.assertIn("--no-install-recommends", run_text)
        self.assertIn("rm -rf /var/lib/apt/lists/*", run_text)
        exposed = " ".join(a for w, a in rt if w == "EXPOSE").split()
        c = render().container()
        self.assertEqual(sorted(exposed), sorted(str(p["containerPort"]) for p in c["ports"]))

    def test_build_stage_has_what_configure_asks_for(self):
        with open(os.path.join(REPO, "configure.ac")) as f:
            wanted = set(re.findall(r"Debian: apt-get install ([a-z0-9.+-]+)\)", f.read()))
        wanted.discard("check")  # only the unit tests need it; the image does not run them
        self.assertTrue(wanted)
        self.assertLessEqual(wanted, set(apt_packages(stage_of("build"))))

    def test_dockerignore_keeps_sources_and_drops_builds(self):
        rules = dockerignore_rules()
        for rel in ("configure.ac", "Makefile.am", "core/main.c", "adapters/linkerd/linkerd.c",
                    "include/smi-metrics/adapter.h", "tests/abi/not-an-elf.so", "tests/unit/test_router.c",
                    "sim/smi-sim.c", "smi-metrics-adapter.pc.in"):
            self.assertFalse(excluded(rel, rules), rel)
        for rel in (".git/HEAD", ".tools/bin/helm", "build/smi-metrics", "build-asan/Makefile", "configure",
                    "Makefile", "Makefile.in", "config.status", "adapters/linkerd/.libs/linkerd.so",
                    "core/main.o", "smi-metrics", "tests/unit/test_router", "autom4te.cache/output.0"):
            self.assertTrue(excluded(rel, rules), rel)


@unittest.skipIf(SKIP_BUILD, "SMI_HELM_SKIP_IMAGE_BUILD=1")
class BuildStage(unittest.TestCase):
    """Runs the build stage's build RUN on the host, in a copy of the
    context .dockerignore lets through, with /out moved to a scratch dir."""

    @classmethod
    def setUpClass(cls):
        root = tmpdir()
        cls.ctx = os.path.join(root, "src")
        cls.out = os.path.join(root, "out")
        cls.sent = build_context(cls.ctx)
        (cmd,) = [a for w, a in stage_of("build") if w == "RUN" and "autoreconf" in a]
        cmd = re.sub(r"(?<![\w/.])/out\b", cls.out, cmd)
        p = subprocess.run(["sh", "-c", cmd], cwd=cls.ctx, capture_output=True, text=True, timeout=1200)
        cls.build_log = p.stdout[-4000:] + p.stderr[-4000:]
        cls.build_rc = p.returncode
        cls.copies = []
        for w, a in stage_of(1):
            if w == "COPY" and a.startswith("--from=build"):
                src, dst = a.split()[1:3]
                cls.copies.append((src.replace("/out", cls.out, 1), dst))

    def test_build_succeeds(self):
        self.assertEqual(self.build_rc, 0, "the build RUN failed:\n" + self.build_log)

    def test_context_is_small_and_clean(self):
        self.assertFalse([p for p in self.sent if p.endswith((".o", ".la", ".lo")) or "/.libs/" in p])
        self.assertFalse([p for p in self.sent if p.startswith(("build", ".git/", ".tools/", "charts/"))])

    def test_copied_paths_exist(self):
        self.assertEqual(self.build_rc, 0, self.build_log)
        dsts = [d for _, d in self.copies]
        self.assertIn("/usr/bin/smi-metrics", dsts)
        self.assertIn("/usr/lib/smi-metrics/adapters/", dsts)
        for src, dst in self.copies:
            self.assertTrue(os.path.exists(src), f"COPY --from=build {src}: missing")
        adapters = os.listdir(os.path.join(self.out, "usr/lib/smi-metrics/adapters"))
        self.assertIn("linkerd.so", adapters)
        self.assertTrue(all(a.endswith(".so") for a in adapters), adapters)
        # The binary's compiled-in adapters directory is where the image puts them.
        helptext = run([os.path.join(self.out, "usr/bin/smi-metrics"), "--help"]).stdout
        self.assertIn("Default adapters directory: /usr/lib/smi-metrics/adapters", helptext)

    def test_image_binaries_accept_the_chart_config(self):
        self.assertEqual(self.build_rc, 0, self.build_log)
        adir = os.path.join(self.out, "usr/lib/smi-metrics/adapters")
        smi = os.path.join(self.out, "usr/bin/smi-metrics")
        for so in sorted(os.listdir(adir)):
            name = so[:-3]
            with self.subTest(name):
                cfg = write(os.path.join(tmpdir(), "config.yaml"),
                            render("adapter=" + name, "adaptersDir=" + adir).config_text())
                p = run([smi, "--check-config", "--config", cfg], check=False)
                self.assertEqual(p.returncode, 0, p.stderr)

    def test_runtime_packages_cover_the_image_binaries(self):
        self.assertEqual(self.build_rc, 0, self.build_log)
        binaries = [os.path.join(self.out, "usr/bin/smi-metrics")] + sorted(
            glob.glob(os.path.join(self.out, "usr/lib/smi-metrics/adapters/*.so")))
        RuntimeLibraries.check(self, binaries)


class RuntimeLibraries(unittest.TestCase):
    """On the build tree's binaries (the image's, above, when built)."""

    @staticmethod
    def check(tc, binaries):
        runtime = set(apt_packages(stage_of(1)))
        base = {"libc6"}  # every Debian image has the C library
        allowed = depends_closure(runtime | base)
        direct_pkgs, all_pkgs = set(), set()
        for b in binaries:
            libs = ldd(b)
            for soname in needed(b):
                pkg = package_of(libs[soname])
                direct_pkgs.add(pkg)
                tc.assertIn(pkg, runtime | base,
                            f"{os.path.basename(b)} links {soname} from {pkg}: add it to the runtime stage")
            for soname, path in libs.items():
                pkg = package_of(path)
                all_pkgs.add(pkg)
                tc.assertIn(pkg, allowed, f"{os.path.basename(b)} loads {soname} ({pkg}), which no runtime "
                                          "package pulls in")
        # Only runtime libraries: every listed package is one a binary links
        # directly, except the CA store for https Prometheus URLs.
        extra = runtime - direct_pkgs - {"ca-certificates"}
        tc.assertEqual(extra, set(), "runtime packages no binary needs")

    def test_build_tree_binaries(self):
        binaries = [os.path.join(BUILD, "smi-metrics")]
        for d in sorted(glob.glob(os.path.join(BUILD, "adapters", "*", ".libs"))):
            binaries += sorted(glob.glob(os.path.join(d, "*.so")))
        if not os.path.exists(binaries[0]) or adapter_dir("linkerd") is None:
            self.skipTest("smi-metrics and linkerd.so not built")
        if any(n.startswith(("libasan", "libubsan", "libtsan")) for n in needed(binaries[0])):
            self.skipTest(f"{BUILD} is a sanitizer build: its libraries are not the image's")
        self.check(self, binaries)


if __name__ == "__main__":
    unittest.main()
