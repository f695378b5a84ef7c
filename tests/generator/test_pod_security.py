"""Every pod template the generator renders (models in both storage modes, the watch, the webhook) meets the
restricted Pod Security Standard, runs as a high uid and is covered by a NetworkPolicy.

The restricted profile, as https://kubernetes.io/docs/concepts/security/pod-security-standards/ states it for
the `latest` version (implemented by k8s.io/pod-security-admission/policy); "containers" means containers,
initContainers and ephemeralContainers alike:

baseline  host namespaces: hostNetwork, hostPID, hostIPC unset or false; no privileged container; added
          capabilities only from the default set; no hostPath volume; no hostPort; AppArmor not Unconfined;
          SELinux type from the allowed set and no user/role; procMount Default; seccomp not Unconfined;
          only safe sysctls; no Windows HostProcess.
restricted volume types only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim,
          projected, secret; allowPrivilegeEscalation false in every container; runAsNonRoot true (pod, or
          every container) and never false; runAsUser never 0; seccomp RuntimeDefault or Localhost (pod, or
          every container); capabilities drop ALL in every container, add at most NET_BIND_SERVICE.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import pytest
import yaml

from generator import loader, render, tree
from tests.generator.goldens import TESTDATA

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH"),
]

CATALOGUES = {
    "example": REPO / "models.yaml",
    **{p.name: p / "models.yaml" for p in sorted((TESTDATA / "catalogues").iterdir())},
}
HIGH_UID = 10000  # checkov CKV_K8S_40: containers should run as a high UID to avoid host conflict

ALLOWED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected"}
    | {"secret"}
)
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
        "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)  # fmt: skip
SECCOMP_CONFINED = frozenset({"RuntimeDefault", "Localhost"})


def restricted_violations(template: dict) -> list[str]:
    """What in a pod template breaks the restricted Pod Security Standard (empty when it complies)."""
    spec = template.get("spec") or {}
    pod = spec.get("securityContext") or {}
    kinds = ("initContainers", "containers", "ephemeralContainers")
    containers = [(kind, c) for kind in kinds for c in spec.get(kind) or []]
    found = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"spec.{field} is true")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']!r} is of type {sorted(kinds)}")
    found += _selinux_apparmor_seccomp("pod", pod)
    for sysctl in pod.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl.get('name')} is not safe")
    if (pod.get("windowsOptions") or {}).get("hostProcess"):
        found.append("pod is a Windows HostProcess")
    if pod.get("runAsUser") == 0:
        found.append("pod runs as uid 0")
    pod_nonroot = pod.get("runAsNonRoot") is True
    pod_seccomp = (pod.get("seccompProfile") or {}).get("type") in SECCOMP_CONFINED
    for kind, container in containers:
        where = f"{kind} {container.get('name')!r}"
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            found.append(f"{where} is privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where} does not set allowPrivilegeEscalation: false")
        if context.get("runAsNonRoot") is False or not (pod_nonroot or context.get("runAsNonRoot") is True):
            found.append(f"{where} is not required to run as non-root")
        if context.get("runAsUser") == 0:
            found.append(f"{where} runs as uid 0")
        seccomp = (context.get("seccompProfile") or {}).get("type")
        if not (seccomp in SECCOMP_CONFINED or (seccomp is None and pod_seccomp)):
            found.append(f"{where} has no RuntimeDefault/Localhost seccomp profile")
        found += _selinux_apparmor_seccomp(where, context)
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where} does not drop ALL capabilities")
        added = set(capabilities.get("add") or [])
        if not added <= {"NET_BIND_SERVICE"} or not added <= BASELINE_CAPABILITIES:
            found.append(f"{where} adds capabilities {sorted(added)}")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{where} has procMount {context['procMount']}")
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"{where} is a Windows HostProcess")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{where} uses hostPort {port['hostPort']}")
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            found.append(f"annotation {key}: {value}")
    return found


def _selinux_apparmor_seccomp(where: str, context: dict) -> list[str]:
    found = []
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        found.append(f"{where} sets SELinux options {selinux}")
    if (context.get("appArmorProfile") or {}).get("type") == "Unconfined":
        found.append(f"{where} has an Unconfined AppArmor profile")
    if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
        found.append(f"{where} has an Unconfined seccomp profile")
    return found


@cache
def built(case: str) -> tuple[dict, ...]:
    """Every object `kubectl kustomize overlays/<env>` gives for every environment of the catalogue."""
    catalogue = loader.load(CATALOGUES[case])
    files = render.render(catalogue)
    with tempfile.TemporaryDirectory(prefix="tfs-pss-") as temporary:
        root = Path(temporary)
        tree.write(files, root)
        objects = []
        for environment in catalogue.environments:
            completed = subprocess.run(
                ["kubectl", "kustomize", str(root / environment.name)],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            objects += [doc for doc in yaml.safe_load_all(completed.stdout) if doc]
    return tuple(objects)


def _workloads(case: str) -> list[dict]:
    return [o for o in built(case) if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def _name(obj: dict) -> str:
    return f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


@pytest.mark.parametrize("case", sorted(CATALOGUES))
def test_every_pod_template_meets_the_restricted_profile(case):
    workloads = _workloads(case)
    assert workloads
    assert {_name(w): restricted_violations(w["spec"]["template"]) for w in workloads} == {
        _name(w): [] for w in workloads
    }


@pytest.mark.parametrize("case", sorted(CATALOGUES))
def test_every_pod_runs_as_a_high_uid(case):
    for workload in _workloads(case):
        spec = workload["spec"]["template"]["spec"]
        pod_uid = (spec.get("securityContext") or {}).get("runAsUser")
        for container in spec["containers"] + spec.get("initContainers", []):
            uid = (container.get("securityContext") or {}).get("runAsUser", pod_uid)
            assert uid is not None and uid >= HIGH_UID, f"{_name(workload)} {container['name']}: uid {uid}"


@pytest.mark.parametrize("case", sorted(CATALOGUES))
def test_every_pod_is_covered_by_a_network_policy_both_ways(case):
    objects = built(case)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    for workload in _workloads(case):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        covering = [
            p
            for p in policies
            if p["metadata"].get("namespace") == workload["metadata"].get("namespace")
            and set(p["spec"]["podSelector"].get("matchLabels", {}).items()) <= set(labels.items())
            and not p["spec"]["podSelector"].get("matchExpressions")
        ]
        assert covering, f"no NetworkPolicy selects {_name(workload)}"
        types = {t for p in covering for t in p["spec"].get("policyTypes", [])}
        assert types == {"Ingress", "Egress"}, _name(workload)


def test_a_model_pod_only_reaches_dns_and_its_storage():
    policy = next(
        o
        for o in built("example")
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "half-plus-three-tfserving"
    )
    spec = policy["spec"]
    assert spec["egress"] == [
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "storage"}}}],
            "ports": [{"port": 7480, "protocol": "TCP"}],
        },
    ]
    assert spec["ingress"][0]["from"] == [{"podSelector": {}}]
    assert [p["port"] for p in spec["ingress"][0]["ports"]] == [8500, 8501]
    assert spec["ingress"][1]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert [p["port"] for p in spec["ingress"][1]["ports"]] == [8500, 8501, 8510]
    assert spec["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/instance": "half-plus-three",
        "app.kubernetes.io/name": "tfserving",
    }


def test_the_checker_finds_what_breaks_the_profile():
    template = {
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
        "spec": {
            "hostNetwork": True,
            "securityContext": {"runAsUser": 0},
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}, {"name": "ok", "emptyDir": {}}],
            "initContainers": [
                {"name": "i", "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True}}
            ],
            "containers": [
                {
                    "name": "c",
                    "ports": [{"containerPort": 80, "hostPort": 80}],
                    "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
                }
            ],
        },
    }
    found = restricted_violations(template)
    assert found == [
        "spec.hostNetwork is true",
        "volume 'host' is of type ['hostPath']",
        "pod runs as uid 0",
        "initContainers 'i' has no RuntimeDefault/Localhost seccomp profile",
        "initContainers 'i' does not drop ALL capabilities",
        "containers 'c' is privileged",
        "containers 'c' does not set allowPrivilegeEscalation: false",
        "containers 'c' is not required to run as non-root",
        "containers 'c' has no RuntimeDefault/Localhost seccomp profile",
        "containers 'c' does not drop ALL capabilities",
        "containers 'c' adds capabilities ['SYS_ADMIN']",
        "containers 'c' uses hostPort 80",
        "annotation container.apparmor.security.beta.kubernetes.io/c: unconfined",
    ]
