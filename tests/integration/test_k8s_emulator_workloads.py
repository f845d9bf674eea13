"""The emulator's workload support on its own, with a tiny HTTP server as the container: Deployments (rolling
update without a failed request through the Service proxy, garbage collection), init containers sharing an
emptyDir, readiness probes, restarts with CrashLoopBackOff and previous logs, graceful deletion, and admission
of a Deployment whose selector does not match its template."""

from __future__ import annotations

import sys
import time

import pytest
import requests

from k8s_emulator import Cluster

SERVER = ("import http.server, sys\n"
          "class H(http.server.BaseHTTPRequestHandler):\n"
          "    def log_message(self, *a): pass\n"
          "    def do_GET(self):\n"
          "        body = open('/mnt/data/v').read().encode()\n"
          "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
          "        self.wfile.write(body)\n"
          "http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()\n")


def deployment(version: str, *, replicas: int = 2, command: list[str] | None = None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "web", "v": version}}, "spec": {
                         "terminationGracePeriodSeconds": 5,
                         "volumes": [{"name": "data", "emptyDir": {}}],
                         "initContainers": [{"name": "init", "image": "x", "volumeMounts": [
                             {"name": "data", "mountPath": "/mnt/data"}], "command": [
                             sys.executable, "-c", f"open('/mnt/data/v', 'w').write('{version}')"]}],
                         "containers": [{"name": "srv", "image": "x",
                                         "ports": [{"name": "http", "containerPort": 8080}],
                                         "command": command or [sys.executable, "-c", SERVER, "0.0.0.0", "8080"],
                                         "volumeMounts": [{"name": "data", "mountPath": "/mnt/data"}],
                                         "readinessProbe": {"httpGet": {"path": "/", "port": "http"},
                                                            "periodSeconds": 1}}]}}}}


@pytest.fixture
def cluster(tmp_path):
    from kubernetes import client, config

    with Cluster(tmp_path / "kubeconfig", namespace="apps") as emulated:
        api = config.new_client_from_config(config_file=str(emulated.kubeconfig))
        emulated.apps, emulated.core = client.AppsV1Api(api), client.CoreV1Api(api)
        emulated.core.create_namespaced_service("apps", {"metadata": {"name": "web"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        yield emulated


def wait(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_rolling_update_behind_a_service_fails_no_request_and_deletion_collects_the_pods(cluster):
    apps, core = cluster.apps, cluster.core
    apps.create_namespaced_deployment("apps", deployment("one"))
    wait(lambda: (apps.read_namespaced_deployment("web", "apps").status.ready_replicas or 0) == 2)
    url = f"{cluster.url}/api/v1/namespaces/apps/services/web:http/proxy/"
    assert requests.get(url, timeout=5).text == "one"  # the init container filled the shared emptyDir

    apps.patch_namespaced_deployment("web", "apps", {"spec": {"template": deployment("two")["spec"]["template"]}})
    answers = []

    def rolled() -> bool:
        r = requests.get(url, timeout=5)
        answers.append(r.text if r.ok else r.status_code)
        s = apps.read_namespaced_deployment("web", "apps").status
        live = [p for p in core.list_namespaced_pod("apps").items if not p.metadata.deletion_timestamp]
        return s.updated_replicas == 2 and s.ready_replicas == 2 and len(live) == 2
    wait(rolled)
    assert set(answers) <= {"one", "two"}, answers  # no 502 or 503 during the update
    d = apps.read_namespaced_deployment("web", "apps")
    assert d.status.observed_generation == d.metadata.generation == 2
    assert {c.type: c.status for c in d.status.conditions} == {"Available": "True", "Progressing": "True"}

    apps.delete_namespaced_deployment("web", "apps")
    wait(lambda: not core.list_namespaced_pod("apps").items)  # garbage collected, gracefully


def test_a_crashing_container_is_restarted_with_back_off_and_its_previous_log_kept(cluster):
    crash = [sys.executable, "-c", "import sys; print('cannot start: no model'); sys.exit(3)"]
    cluster.apps.create_namespaced_deployment("apps", deployment("x", replicas=1, command=crash))

    def backing_off():
        pods = cluster.core.list_namespaced_pod("apps").items
        cs = pods[0].status.container_statuses[0] if pods and pods[0].status.container_statuses else None
        return (pods[0], cs) if cs and cs.restart_count >= 1 and cs.last_state.terminated else None
    pod, cs = wait(backing_off)
    assert cs.last_state.terminated.exit_code == 3 and pod.status.phase == "Running" and not cs.ready
    log = cluster.core.read_namespaced_pod_log(pod.metadata.name, "apps", container="srv", previous=True)
    assert "cannot start: no model" in log
    assert requests.get(f"{cluster.url}/api/v1/namespaces/apps/services/web:http/proxy/", timeout=5).status_code == 503


def test_a_deployment_whose_selector_misses_its_template_is_refused(cluster):
    from kubernetes.client.exceptions import ApiException

    bad = deployment("one")
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as err:
        cluster.apps.create_namespaced_deployment("apps", bad)
    assert err.value.status == 422 and "selector` does not match template `labels`" in err.value.body
