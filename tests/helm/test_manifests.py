"""Adapter-owned manifests (adapters/<mesh>/manifests/) reach the chart
through symlinks (charts/smi-metrics/files/adapters/<mesh>), never a copy:
every manifests directory is linked, no link dangles, the chart renders
exactly the adapter's objects and only when that adapter (and for Istio the
Mixer mode) is selected, and `helm package` stores the files themselves."""
import glob
import os
import shutil
import tarfile
import unittest

import yaml

from chartlib import CHART, REPO, helm, render, template_args, tmpdir, write
from matrix import ADAPTERS

LINKS = os.path.join(CHART, "files", "adapters")


def manifest_dirs(repo=REPO):
    """{mesh: directory} for every adapters/<mesh>/manifests in the tree."""
    return {os.path.basename(os.path.dirname(d)): d
            for d in sorted(glob.glob(os.path.join(repo, "adapters", "*", "manifests"))) if os.path.isdir(d)}


def manifest_files(d):
    return sorted(f for f in os.listdir(d) if f.endswith((".yaml", ".yml")))


def objects_of(d):
    objs = []
    for f in manifest_files(d):
        with open(os.path.join(d, f)) as fh:
            objs += [o for o in yaml.safe_load_all(fh) if o is not None]
    return objs


def canonical(objs):
    """Order-free form: helm sorts what it renders by kind."""
    return sorted(objs, key=lambda o: (o.get("kind", ""), o.get("metadata", {}).get("namespace", ""),
                                       o.get("metadata", {}).get("name", "")))


def shipped(r):
    return canonical(r.from_source("adapter-manifests.yaml"))


def expected_for(label, dirs):
    """What the chart must ship for an ADAPTERS label, from the tree."""
    mesh = label.split("-")[0]
    if mesh not in dirs:
        return []
    if mesh == "istio" and label != "istio-mixer":
        return []
    return canonical(objects_of(dirs[mesh]))


class Links(unittest.TestCase):
    def test_every_manifests_directory_is_linked(self):
        for mesh, d in manifest_dirs().items():
            with self.subTest(mesh):
                link = os.path.join(LINKS, mesh)
                self.assertTrue(os.path.islink(link),
                                f"adapters/{mesh}/manifests exists but the chart does not ship it: run\n"
                                f"  ln -s ../../../../adapters/{mesh}/manifests charts/smi-metrics/files/adapters/{mesh}")
                self.assertEqual(os.path.realpath(link), os.path.realpath(d))

    def test_no_link_dangles_or_copies(self):
        for entry in sorted(os.listdir(LINKS)):
            if entry == "README.md":
                continue
            path = os.path.join(LINKS, entry)
            with self.subTest(entry):
                self.assertTrue(os.path.islink(path), f"files/adapters/{entry} must be a symlink, not a copy")
                target = os.readlink(path)
                self.assertEqual(target, f"../../../../adapters/{entry}/manifests", "relative link into the tree")
                self.assertTrue(os.path.isdir(path), f"files/adapters/{entry} dangles: Helm cannot load the chart")

    def test_shipped_only_when_selected(self):
        dirs = manifest_dirs()
        if "istio" not in dirs:
            print("\nNOTE: adapters/istio/manifests/ does not exist yet: the Istio Mixer objects cannot be "
                  "checked; FixtureTree checks the mechanism", end=" ")
        for label, sets in ADAPTERS:
            with self.subTest(label):
                self.assertEqual(shipped(render(*sets)), expected_for(label, dirs))

    def test_packaged_chart_holds_the_files(self):
        out = tmpdir()
        helm("package", CHART, "--destination", out)
        (tgz,) = glob.glob(os.path.join(out, "smi-metrics-*.tgz"))
        with tarfile.open(tgz) as tar:
            members = {m.name: m for m in tar.getmembers()}
            for mesh, d in manifest_dirs().items():
                with self.subTest(mesh):
                    for f in sorted(os.listdir(d)):
                        m = members.get(f"smi-metrics/files/adapters/{mesh}/{f}")
                        self.assertIsNotNone(m, f"{f} missing from the package")
                        self.assertTrue(m.isfile(), "a regular file, not a link")
                        with open(os.path.join(d, f), "rb") as fh:
                            self.assertEqual(tar.extractfile(m).read(), fh.read())
            # Nothing but the README and linked manifests under files/.
            for name in members:
                if "/files/" in name:
                    rel = name.split("/files/", 1)[1]
                    self.assertRegex(rel, r"^adapters/[a-z0-9_-]+/[^/]+$", name)
        for label, sets in ADAPTERS:
            with self.subTest("render from package " + label):
                self.assertEqual(shipped(render(*sets, chart=tgz)), shipped(render(*sets)))


FIXTURE_HANDLER = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata:
  name: smi-prometheus
  namespace: istio-system
spec:
  compiledAdapter: prometheus
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata:
  name: smirequestcount
  namespace: istio-system
spec:
  compiledTemplate: metric
  params:
    value: "1"
"""
FIXTURE_RULE = """\
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata:
  name: smiprom
  namespace: istio-system
spec:
  actions:
    - handler: smi-prometheus
      instances: [smirequestcount]
"""


class FixtureTree(unittest.TestCase):
    """The mechanism itself, in a scratch tree with fixture Istio manifests
    (not the real ones): the chart picks them up through the link, reflects
    edits without any copy step, packages them, and a dangling link fails."""

    def setUp(self):
        self.root = tmpdir()
        self.chart = os.path.join(self.root, "charts", "smi-metrics")
        shutil.copytree(CHART, self.chart, symlinks=True)
        self.mdir = os.path.join(self.root, "adapters", "istio", "manifests")
        os.makedirs(self.mdir)
        write(os.path.join(self.mdir, "handler.yaml"), FIXTURE_HANDLER)
        write(os.path.join(self.mdir, "rule.yml"), FIXTURE_RULE)
        write(os.path.join(self.mdir, "README.md"), "not a manifest\n")
        link = os.path.join(self.chart, "files", "adapters", "istio")
        if not os.path.lexists(link):
            os.symlink("../../../../adapters/istio/manifests", link)
        # Links to the real tree's other adapters, re-pointed into the scratch tree.
        for mesh, d in manifest_dirs().items():
            if mesh != "istio":
                shutil.copytree(d, os.path.join(self.root, "adapters", mesh, "manifests"))

    def test_selected_and_in_sync(self):
        mixer = shipped(render("adapter=istio", "adapterOptions.mode=mixer", chart=self.chart))
        self.assertEqual(mixer, canonical(objects_of(self.mdir)))
        self.assertEqual([o["kind"] for o in mixer], ["handler", "instance", "rule"])
        self.assertEqual(shipped(render("adapter=istio", chart=self.chart)), [])
        self.assertEqual(shipped(render("adapter=istio", "adapterOptions.mode=telemetry-v2", chart=self.chart)), [])
        self.assertEqual(shipped(render("adapter=linkerd", chart=self.chart)), [])
        # An edit of the adapter's file is what the chart renders next: no copy.
        write(os.path.join(self.mdir, "rule.yml"), FIXTURE_RULE.replace("smiprom", "smiprom2"))
        mixer = shipped(render("adapter=istio", "adapterOptions.mode=mixer", chart=self.chart))
        self.assertEqual([o["metadata"]["name"] for o in mixer if o["kind"] == "rule"], ["smiprom2"])

    def test_package(self):
        out = tmpdir()
        helm("package", self.chart, "--destination", out)
        (tgz,) = glob.glob(os.path.join(out, "smi-metrics-*.tgz"))
        with tarfile.open(tgz) as tar:
            names = tar.getnames()
        self.assertIn("smi-metrics/files/adapters/istio/handler.yaml", names)
        self.assertIn("smi-metrics/files/adapters/istio/rule.yml", names)
        self.assertEqual(shipped(render("adapter=istio", "adapterOptions.mode=mixer", chart=tgz)),
                         canonical(objects_of(self.mdir)))

    def test_dangling_link_breaks_helm(self):
        shutil.rmtree(os.path.join(self.root, "adapters", "istio"))
        p = helm(*template_args(["adapter=linkerd"], chart=self.chart), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("error evaluating symlink", p.stderr)


if __name__ == "__main__":
    unittest.main()
