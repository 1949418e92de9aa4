"""README "Install in a cluster (Helm)": every helm and kubectl command of the
section that can run without a real cluster runs as written, against the fake
kube-apiserver: `helm install`/`helm upgrade` as `helm template
--dry-run=server` with the same arguments (so lookup reads the cluster, as
an install would), the kubectl ConfigMap extraction with the real kubectl,
and the GitOps `helm template` as is.  Commands that need a running cluster
(kubectl rollout/get apiservice/get --raw, docker, kind) are listed, not run."""
import os
import re
import shlex
import subprocess
import unittest

from chartlib import NS, OTHER_CA, REPO, FakeKube, Render, pem, tmpdir

SECTION = "## Install in a cluster (Helm)"
NEEDS_A_CLUSTER = ("docker ", "kind ", "minikube ", "kubectl -n smi-metrics rollout", "kubectl get apiservice",
                   "kubectl get --raw")


def section_commands():
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    body = text[start:end if end >= 0 else None]
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                cmds.append(line)
    return cmds


def as_template(cmd):
    """helm install/upgrade ARGS -> helm template ARGS --dry-run=server."""
    words = shlex.split(cmd)
    if words[:2] == ["helm", "upgrade"] and "--install" in words:
        words.remove("--install")
    words[1] = "template"
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
            continue
        if w in ("--create-namespace", "--wait", "--atomic"):
            continue
        if w == "--timeout":
            skip = True
            continue
        out.append(w)
    return shlex.join(out + ["--dry-run=server"])


class InstallSection(unittest.TestCase):
    def test_commands_run_as_written(self):
        cmds = section_commands()
        self.assertTrue(any(c.startswith("helm install") for c in cmds))
        work = tmpdir()
        os.symlink(os.path.join(REPO, "charts"), os.path.join(work, "charts"))
        ran = []
        with FakeKube() as fake:
            fake.put_auth_configmap(pem(OTHER_CA))
            for cmd in cmds:
                if cmd.startswith(NEEDS_A_CLUSTER):
                    continue
                if cmd.startswith(("helm install", "helm upgrade")):
                    run = as_template(cmd)
                elif cmd.startswith(("helm template", "kubectl ")):
                    run = cmd
                else:
                    self.fail(f"README command not covered by this test: {cmd}")
                with self.subTest(cmd):
                    p = subprocess.run(["sh", "-c", run], cwd=work, capture_output=True, text=True,
                                       env={**os.environ, **fake.env}, timeout=120)
                    self.assertEqual(p.returncode, 0, f"{run}\n{p.stderr}")
                    ran.append(cmd)
                    if cmd.startswith("helm") and ">" not in cmd:
                        r = Render(p.stdout)
                        api = r.get("APIService")
                        self.assertEqual(api["spec"]["service"]["namespace"], NS)
                        cm = [o for o in r.all("ConfigMap") if "config.yaml" in o["data"]][0]
                        # lookup found the cluster's front-proxy CA.
                        self.assertEqual(cm["data"]["requestheader-client-ca.crt"].strip(), pem(OTHER_CA).strip())
        # The GitOps pair: kubectl wrote the CA file, helm template rendered with it.
        with open(os.path.join(work, "front-proxy-ca.pem")) as f:
            self.assertEqual(f.read().strip(), pem(OTHER_CA).strip())
        with open(os.path.join(work, "smi-metrics.yaml")) as f:
            r = Render(f.read())
        self.assertIn("cert-manager.io/inject-ca-from", r.get("APIService")["metadata"]["annotations"])
        self.assertGreaterEqual(len([c for c in ran if c.startswith("helm install")]), 3)


if __name__ == "__main__":
    unittest.main()
