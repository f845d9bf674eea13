"""`Cluster`: the API server, the node agent, the controllers (Deployments, garbage collection) and the
prober started together, reachable through a kubeconfig file.

    with Cluster(tmp_path / "kubeconfig", nodes=[{"name": "gpu-1", "gpus": 2}]) as cluster:
        config.load_kube_config(config_file=str(cluster.kubeconfig))
        ...

Anything that reads a kubeconfig (the `kubernetes` client, `kubernetes_asyncio`, Airflow's hooks with
`kube_config_path` or `config_file`) then talks to the emulator over HTTP on 127.0.0.1 at a random port.
Leaving the block stops the server and kills every process the pods and execs started.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import threading
from pathlib import Path

from .agent import NodeAgent, node_object
from .controllers import ControllerManager
from .probes import Prober
from .server import ApiServer
from .state import State
from .tls import issue

DEFAULT_NODES = [{"name": "emulator-node"}]
KUBECONFIG_TOKEN = "emulator-token"


class Cluster:
    """An emulated cluster.

    nodes: short node specs, `{"name", "labels", "taints", "allocatable", "gpus", "gpu_resource"}`.
    inject: failure injection by pod name prefix, e.g. `{"train-oom": "oom"}` (also the pod label
        `emulator/inject`); failures are oom, evict, image-pull and unschedulable; a list is used up by
        successive pods, one failure (or None) each (see agent.py).
    executables: command[0] substitutions, e.g. `{"python": sys.executable}`; by default command[0]
        is run as given, so tests use `sys.executable`.
    inherit_env: containers start from the host's environment (True) or from PATH alone (False).
    fail_after: seconds before an injected oom or eviction strikes a running container.
    tls: serve HTTPS with a certificate from a throwaway CA (`ca_pem`), as a managed control plane does.
    require_token: answer 401 unless the request carries the kubeconfig's token or one given to
        `accept_token` (e.g. by the Google OAuth emulator).
    """

    def __init__(self, kubeconfig: str | Path, *, nodes: list[dict] | None = None,
                 inject: dict[str, str | list] | None = None, executables: dict[str, str] | None = None,
                 inherit_env: bool = True, fail_after: float = 0.5, namespace: str = "default",
                 workdir: str | Path | None = None, tls: bool = False, require_token: bool = False):
        self.kubeconfig = Path(kubeconfig)
        self.namespace = namespace
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="k8s-emulator-"))
        self.state = State()
        self.state.add_nodes(node_object(spec, i) for i, spec in enumerate(nodes or DEFAULT_NODES))
        self.agent = NodeAgent(self.state, self.workdir / "pods", inject=inject, executables=executables,
                               inherit_env=inherit_env, fail_after=fail_after)
        self.controllers = ControllerManager(self.state, self.agent)
        self.prober = Prober(self.state, self.agent)
        self.server: ApiServer | None = None
        self.certificate = issue() if tls else None
        self._tokens: set[str] | None = {KUBECONFIG_TOKEN} if require_token else None

    @property
    def ca_pem(self) -> bytes:
        assert self.certificate is not None, "the cluster serves plain HTTP (tls=False)"
        return self.certificate.ca_pem

    def accept_token(self, token: str) -> None:
        if self._tokens is not None:
            self._tokens.add(token)

    @property
    def tokens_seen(self) -> set[str]:
        """Bearer tokens requests came with."""
        return self.server.tokens_seen if self.server else set()

    @property
    def url(self) -> str:
        assert self.server is not None, "the cluster is not running"
        return self.server.url

    def __enter__(self) -> "Cluster":
        context = self.certificate.server_context(self.workdir) if self.certificate else None
        self.server = ApiServer(self.state, self.agent, tls_context=context, tokens=self._tokens)
        self.server.controllers = self.controllers
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                         name="k8s-emulator-api").start()
        self.agent.start()
        self.controllers.start()
        self.prober.start()
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.write_text(json.dumps(self.kubeconfig_dict(), indent=2))  # JSON is valid YAML
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.controllers.stop()
        self.prober.stop()
        self.agent.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kubeconfig_dict(self) -> dict:
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": "emulator", "preferences": {},
            "clusters": [{"name": "emulator", "cluster": {
                "server": self.url,
                **({"certificate-authority-data": base64.b64encode(self.ca_pem).decode()}
                   if self.certificate else {})}}],
            "users": [{"name": "emulator", "user": {"token": KUBECONFIG_TOKEN}}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "emulator",
                                                          "namespace": self.namespace}}],
        }

    def core_v1(self):
        """A `kubernetes.client.CoreV1Api` bound to this cluster through its kubeconfig (no global state)."""
        from kubernetes import client, config

        return client.CoreV1Api(config.new_client_from_config(config_file=str(self.kubeconfig)))
