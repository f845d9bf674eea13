"""The emulated Kubernetes cluster (tests/k8s_emulator) through the real clients: the `kubernetes` client
and `kubernetes_asyncio` over a kubeconfig, and the provider's PodManager / AsyncKubernetesHook.

Containers are local processes, so every pod here runs `sys.executable` as command[0].
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from k8s_emulator import INJECT_LABEL, Cluster

NS = "default"
GPU = "nvidia.com/gpu"
NODES = [
    {"name": "gpu-a", "labels": {"pool": "gpu"}, "gpus": 2,
     "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
    {"name": "cpu-a", "labels": {"pool": "cpu"}},
]
GPU_TOLERATION = client.V1Toleration(key="dedicated", operator="Equal", value="gpu", effect="NoSchedule")
SLEEP = "import time; time.sleep(30)"


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path / "kubeconfig", nodes=NODES, inject={"doomed-": "oom"}, fail_after=0.3,
                 executables={"python": sys.executable}) as c:
        yield c


@pytest.fixture
def v1(cluster) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))


def make_pod(name: str, code: str = "print('hello')", *, labels=None, env=None, gpus: int = 0, selector=None,
             tolerations=None, args=None, namespace: str = NS) -> client.V1Pod:
    resources = client.V1ResourceRequirements(limits={GPU: str(gpus)}) if gpus else None
    return client.V1Pod(
        api_version="v1", kind="Pod",
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=labels),
        spec=client.V1PodSpec(
            restart_policy="Never", node_selector=selector, tolerations=tolerations,
            containers=[client.V1Container(name="base", image="python:3.11-slim", env=env, resources=resources,
                                           command=[sys.executable, "-c", code], args=args)]))


def wait_for(v1: client.CoreV1Api, name: str, check, timeout: float = 10) -> client.V1Pod:
    deadline = time.time() + timeout
    while True:
        pod = v1.read_namespaced_pod(name, NS)
        if check(pod):
            return pod
        if time.time() > deadline:
            raise AssertionError(f"pod {name} never got there: {pod.status}")
        time.sleep(0.05)


def phase(*phases):
    return lambda pod: pod.status.phase in phases


def condition(pod: client.V1Pod, type_: str) -> client.V1PodCondition | None:
    return next((c for c in pod.status.conditions or [] if c.type == type_), None)


def container(pod: client.V1Pod, name: str = "base") -> client.V1ContainerStatus:
    return next(cs for cs in pod.status.container_statuses if cs.name == name)


def logs(v1: client.CoreV1Api, name: str, **kwargs) -> str:
    resp = v1.read_namespaced_pod_log(name, NS, container="base", _preload_content=False, **kwargs)
    return resp.data.decode()


def api_error(call) -> ApiException:
    with pytest.raises(ApiException) as info:
        call()
    return info.value


# -- API basics -------------------------------------------------------------------------------------------
def test_version_through_kubeconfig(cluster):
    api = client.ApiClient(client.Configuration())
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=api.configuration)
    assert api.configuration.host == cluster.url
    info = client.VersionApi(api).get_code()
    assert (info.major, info.minor, info.git_version) == ("1", "31", "v1.31.0")


def test_create_get_list_delete(v1):
    created = v1.create_namespaced_pod(NS, make_pod("one", SLEEP))
    assert created.status.phase == "Pending" and created.metadata.uid and created.metadata.resource_version
    generated = v1.create_namespaced_pod(NS, client.V1Pod(
        metadata=client.V1ObjectMeta(generate_name="gen-"), spec=make_pod("x", SLEEP).spec))
    assert generated.metadata.name.startswith("gen-") and len(generated.metadata.name) == len("gen-") + 5

    assert v1.read_namespaced_pod("one", NS).metadata.uid == created.metadata.uid
    assert {p.metadata.name for p in v1.list_namespaced_pod(NS).items} == {"one", generated.metadata.name}

    clash = api_error(lambda: v1.create_namespaced_pod(NS, make_pod("one")))
    assert clash.status == 409 and json.loads(clash.body)["reason"] == "AlreadyExists"

    running = wait_for(v1, "one", phase("Running"))
    pid_alive = container(running).state.running is not None
    deleted = v1.delete_namespaced_pod("one", NS, body=client.V1DeleteOptions())
    assert pid_alive and deleted.metadata.name == "one" and deleted.metadata.deletion_timestamp
    missing = api_error(lambda: v1.read_namespaced_pod("one", NS))
    assert missing.status == 404 and json.loads(missing.body)["kind"] == "Status"
    assert api_error(lambda: v1.delete_namespaced_pod("one", NS)).status == 404


def test_label_and_field_selectors(v1):
    v1.create_namespaced_pod(NS, make_pod("a1", labels={"app": "a", "tier": "web"}))
    v1.create_namespaced_pod(NS, make_pod("a2", SLEEP, labels={"app": "a"}))
    v1.create_namespaced_pod(NS, make_pod("b1", SLEEP, labels={"app": "b", "tier": "db"}))
    v1.create_namespaced_pod("other", make_pod("c1", SLEEP, labels={"app": "a"}, namespace="other"))
    wait_for(v1, "a1", phase("Succeeded"))

    def names(**kwargs):
        return sorted(p.metadata.name for p in v1.list_namespaced_pod(NS, **kwargs).items)

    assert names(label_selector="app=a") == ["a1", "a2"]
    assert names(label_selector="app!=a") == ["b1"]
    assert names(label_selector="tier") == ["a1", "b1"]
    assert names(label_selector="!tier") == ["a2"]
    assert names(label_selector="app in (a,b),tier notin (db)") == ["a1", "a2"]
    assert names(label_selector="app==a,tier=web") == ["a1"]
    assert names(field_selector="metadata.name=a2") == ["a2"]
    assert names(field_selector="status.phase=Succeeded") == ["a1"]
    assert names(field_selector="status.phase!=Succeeded", label_selector="app=a") == ["a2"]
    everywhere = v1.list_pod_for_all_namespaces(label_selector="app=a").items
    assert sorted((p.metadata.namespace, p.metadata.name) for p in everywhere) == [
        ("default", "a1"), ("default", "a2"), ("other", "c1")]
    assert api_error(lambda: v1.list_namespaced_pod(NS, field_selector="spec.bogus=1")).status == 400


def test_invalid_pods_are_rejected_with_422(v1):
    body = v1.api_client.sanitize_for_serialization(make_pod("bad"))
    body["spec"]["containers"][0]["bogus"] = 1
    err = api_error(lambda: v1.create_namespaced_pod(NS, body))
    status = json.loads(err.body)
    assert err.status == 422 and status["reason"] == "Invalid"
    assert "bogus" in status["message"] and status["message"].startswith('Pod "bad" is invalid')

    no_image = v1.api_client.sanitize_for_serialization(make_pod("bad"))
    del no_image["spec"]["containers"][0]["image"]
    err = api_error(lambda: v1.create_namespaced_pod(NS, no_image))
    assert err.status == 422 and "spec.containers[0].image: Required value" in json.loads(err.body)["message"]
    assert v1.list_namespaced_pod(NS).items == []


def test_patch_flavours(v1):
    v1.create_namespaced_pod(NS, make_pod("p", SLEEP, labels={"keep": "1", "drop": "1"}))
    v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"added": "yes", "drop": None}}})  # strategic
    v1.patch_namespaced_pod("p", NS, {"metadata": {"annotations": {"a": "b"}}},
                            _content_type="application/merge-patch+json")
    patched = v1.patch_namespaced_pod("p", NS, [{"op": "replace", "path": "/metadata/labels/keep", "value": "2"}])
    assert patched.metadata.labels == {"keep": "2", "added": "yes"}
    assert patched.metadata.annotations == {"a": "b"}


# -- running containers -----------------------------------------------------------------------------------
def test_pod_runs_to_success_and_logs_follow(v1):
    v1.create_namespaced_pod(NS, make_pod("hello", "print('hello'); import sys; sys.exit(0)"))
    pod = wait_for(v1, "hello", phase("Succeeded", "Failed"))
    assert pod.status.phase == "Succeeded" and pod.spec.node_name
    assert condition(pod, "PodScheduled").status == "True"
    terminated = container(pod).state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert "hello" in logs(v1, "hello", follow=True)
    stamped = logs(v1, "hello", timestamps=True)
    stamp, _, text = stamped.rstrip("\n").partition(" ")
    assert text == "hello" and stamp.endswith("Z") and len(stamp.split(".")[1]) == 10  # nanoseconds + Z
    reasons = [e.reason for e in v1.list_namespaced_event(NS, field_selector="involvedObject.name=hello").items]
    assert reasons[:1] == ["Scheduled"] and "Started" in reasons


def test_failing_container_and_log_options(v1):
    code = "import sys\nfor i in range(5): print(f'line {i}', flush=True)\nprint('oops', file=sys.stderr); sys.exit(3)"
    v1.create_namespaced_pod(NS, make_pod("crash", code))
    pod = wait_for(v1, "crash", phase("Succeeded", "Failed"))
    terminated = container(pod).state.terminated
    assert pod.status.phase == "Failed" and (terminated.exit_code, terminated.reason) == (3, "Error")
    # stdout and stderr are separate pipes: their lines keep their own order, not a shared one.
    lines = logs(v1, "crash").splitlines()
    assert [line for line in lines if line != "oops"] == [f"line {i}" for i in range(5)] and "oops" in lines
    assert logs(v1, "crash", tail_lines=2).splitlines() == lines[-2:]
    assert logs(v1, "crash", since_seconds=60).count("line") == 5


def test_command_zero_start_errors_and_deadline(v1):
    mapped = make_pod("mapped")
    mapped.spec.containers[0].command = ["python", "-c", "import sys; print(sys.executable)"]
    v1.create_namespaced_pod(NS, mapped)
    missing = make_pod("missing")
    missing.spec.containers[0].command = ["/nonexistent/trainer"]
    v1.create_namespaced_pod(NS, missing)
    late = make_pod("late", SLEEP)
    late.spec.active_deadline_seconds = 1
    v1.create_namespaced_pod(NS, late)

    wait_for(v1, "mapped", phase("Succeeded"))
    assert logs(v1, "mapped").strip() == sys.executable  # via Cluster(executables={"python": ...})
    terminated = container(wait_for(v1, "missing", phase("Failed"))).state.terminated
    assert (terminated.reason, terminated.exit_code) == ("StartError", 128)
    late = wait_for(v1, "late", phase("Failed"), timeout=5)
    assert late.status.reason == "DeadlineExceeded"


def test_follow_streams_while_the_container_runs(v1):
    code = "import time\nfor i in range(4):\n    print(f'tick {i}', flush=True); time.sleep(0.25)"
    v1.create_namespaced_pod(NS, make_pod("ticker", code))
    wait_for(v1, "ticker", phase("Running"))
    resp = v1.read_namespaced_pod_log("ticker", NS, container="base", follow=True, _preload_content=False)
    first_arrival, chunks = None, []
    for chunk in resp.stream(amt=None):
        first_arrival = first_arrival or time.time()
        chunks.append(chunk)
    done = time.time()
    assert b"".join(chunks).decode().splitlines() == [f"tick {i}" for i in range(4)]
    assert done - first_arrival > 0.3  # streamed as produced, not after the end
    assert wait_for(v1, "ticker", phase("Succeeded"))


def test_secret_env_values(v1):
    v1.create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="tracking"),
                                                    string_data={"token": "s3cret"}))
    secret = v1.read_namespaced_secret("tracking", NS)
    assert secret.data == {"token": "czNjcmV0"}
    env = [client.V1EnvVar(name="PLAIN", value="p"),
           client.V1EnvVar(name="EXPANDED", value="$(PLAIN)-x"),
           client.V1EnvVar(name="TOKEN", value_from=client.V1EnvVarSource(
               secret_key_ref=client.V1SecretKeySelector(name="tracking", key="token"))),
           client.V1EnvVar(name="MAYBE", value_from=client.V1EnvVarSource(
               secret_key_ref=client.V1SecretKeySelector(name="tracking", key="absent", optional=True)))]
    code = "import os; print(os.environ['PLAIN'], os.environ['EXPANDED'], os.environ['TOKEN'], 'MAYBE' in os.environ)"
    v1.create_namespaced_pod(NS, make_pod("env", code, env=env))
    wait_for(v1, "env", phase("Succeeded"))
    assert logs(v1, "env").strip() == "p p-x s3cret False"

    missing = [client.V1EnvVar(name="X", value_from=client.V1EnvVarSource(
        secret_key_ref=client.V1SecretKeySelector(name="nope", key="k")))]
    v1.create_namespaced_pod(NS, make_pod("nosecret", env=missing))
    pod = wait_for(v1, "nosecret", lambda p: p.status.container_statuses and container(p).state.waiting
                   and container(p).state.waiting.reason == "CreateContainerConfigError")
    assert pod.status.phase == "Pending" and 'secret "nope" not found' in container(pod).state.waiting.message
    v1.create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="nope"), string_data={"k": "v"}))
    assert wait_for(v1, "nosecret", phase("Succeeded"), timeout=5)  # the kubelet retries once the Secret exists


# -- scheduling -------------------------------------------------------------------------------------------
def unschedulable(pod: client.V1Pod) -> bool:
    cond = condition(pod, "PodScheduled")
    return bool(cond and cond.status == "False" and cond.reason == "Unschedulable")


def test_scheduling_respects_selectors_taints_and_gpus(v1):
    v1.create_namespaced_pod(NS, make_pod("gpu-ok", SLEEP, gpus=1, selector={"pool": "gpu"},
                                          tolerations=[GPU_TOLERATION]))
    v1.create_namespaced_pod(NS, make_pod("cpu-ok", SLEEP))
    v1.create_namespaced_pod(NS, make_pod("too-many", SLEEP, gpus=3, selector={"pool": "gpu"},
                                          tolerations=[GPU_TOLERATION]))
    v1.create_namespaced_pod(NS, make_pod("intolerant", SLEEP, gpus=1))
    v1.create_namespaced_pod(NS, make_pod("nowhere", SLEEP, selector={"pool": "tpu"}, tolerations=[GPU_TOLERATION]))

    assert wait_for(v1, "gpu-ok", phase("Running")).spec.node_name == "gpu-a"
    assert wait_for(v1, "cpu-ok", phase("Running")).spec.node_name == "cpu-a"  # the taint keeps it off gpu-a
    too_many = wait_for(v1, "too-many", unschedulable)
    assert condition(too_many, "PodScheduled").message == (
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node affinity/selector.")
    assert condition(wait_for(v1, "intolerant", unschedulable), "PodScheduled").message == (
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint {dedicated: gpu}.")
    assert "2 node(s) didn't match Pod's node affinity/selector" in condition(
        wait_for(v1, "nowhere", unschedulable), "PodScheduled").message
    events = v1.list_namespaced_event(NS, field_selector="involvedObject.name=too-many").items
    assert [(e.type, e.reason, e.source.component) for e in events] == [
        ("Warning", "FailedScheduling", "default-scheduler")]
    assert v1.read_namespaced_pod("too-many", NS).status.phase == "Pending"


def test_gpus_are_freed_when_pods_end(v1):
    for name in ("g1", "g2", "g3"):
        v1.create_namespaced_pod(NS, make_pod(name, SLEEP, gpus=1, tolerations=[GPU_TOLERATION]))
        if name != "g3":
            wait_for(v1, name, phase("Running"))
    assert "Insufficient nvidia.com/gpu" in condition(wait_for(v1, "g3", unschedulable), "PodScheduled").message
    v1.delete_namespaced_pod("g1", NS)
    assert wait_for(v1, "g3", phase("Running")).spec.node_name == "gpu-a"


def test_https_with_its_own_ca_and_bearer_tokens(tmp_path):
    with Cluster(tmp_path / "kubeconfig", tls=True, require_token=True) as c:
        assert c.url.startswith("https://127.0.0.1:")
        assert c.core_v1().list_namespaced_pod(NS).items == []  # the kubeconfig carries the CA and the token

        def api(token=None) -> client.CoreV1Api:
            conf = client.Configuration(host=c.url)
            conf.ssl_ca_cert = str(tmp_path / "ca.pem")
            (tmp_path / "ca.pem").write_bytes(c.ca_pem)
            if token:
                conf.api_key = {"BearerToken": token, "authorization": token}
                conf.api_key_prefix = {"BearerToken": "Bearer", "authorization": "Bearer"}
            conf.retries = False
            return client.CoreV1Api(client.ApiClient(conf))

        assert api_error(lambda: api().list_namespaced_pod(NS)).status == 401
        assert api_error(lambda: api("forged").list_namespaced_pod(NS)).status == 401
        c.accept_token("issued-elsewhere")
        assert api("issued-elsewhere").list_namespaced_pod(NS).items == []
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):  # not trusted without the CA
            urllib.request.urlopen(f"{c.url}/version", timeout=5)
        assert {"emulator-token", "forged", "issued-elsewhere"} <= c.tokens_seen


# -- failure injection ------------------------------------------------------------------------------------
def inject(failure: str) -> dict:
    return {INJECT_LABEL: failure}


def test_injected_oom(v1):
    v1.create_namespaced_pod(NS, make_pod("oom", SLEEP, labels=inject("oom")))
    pod = wait_for(v1, "oom", phase("Failed"))
    terminated = container(pod).state.terminated
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)


def test_injected_oom_by_name_prefix(v1):
    v1.create_namespaced_pod(NS, make_pod("doomed-1", "print('quick')"))  # exiting first does not dodge it
    pod = wait_for(v1, "doomed-1", phase("Succeeded", "Failed"))
    assert pod.status.phase == "Failed" and container(pod).state.terminated.reason == "OOMKilled"


def test_injected_eviction(v1):
    v1.create_namespaced_pod(NS, make_pod("evicted", SLEEP, labels=inject("evict")))
    pod = wait_for(v1, "evicted", phase("Failed"))
    assert pod.status.reason == "Evicted" and "low on resource: memory" in pod.status.message
    assert container(pod).state.terminated is not None
    assert condition(pod, "DisruptionTarget").status == "True"
    reasons = {e.reason for e in v1.list_namespaced_event(NS, field_selector="involvedObject.name=evicted").items}
    assert "Evicted" in reasons


def test_injected_failures_in_sequence_are_used_up_pod_by_pod(tmp_path):
    with Cluster(tmp_path / "kubeconfig", nodes=NODES, inject={"retry-": ["evict", None]}, fail_after=0.2,
                 executables={"python": sys.executable}) as c:
        v1 = c.core_v1()
        for name in ("retry-1", "retry-2", "retry-3"):
            v1.create_namespaced_pod(NS, make_pod(name, "import time; time.sleep(0.5)"))
        ended = {name: wait_for(v1, name, phase("Succeeded", "Failed")) for name in ("retry-1", "retry-2", "retry-3")}
    assert ended["retry-1"].status.reason == "Evicted"
    assert [ended[n].status.phase for n in ("retry-2", "retry-3")] == ["Succeeded", "Succeeded"]


def test_injected_image_pull_failure(v1):
    v1.create_namespaced_pod(NS, make_pod("pull", labels=inject("image-pull")))
    pod = wait_for(v1, "pull", lambda p: p.status.container_statuses and container(p).state.waiting
                   and container(p).state.waiting.reason == "ImagePullBackOff")
    time.sleep(0.3)
    pod = v1.read_namespaced_pod("pull", NS)
    assert pod.status.phase == "Pending" and condition(pod, "PodScheduled").status == "True"
    err = api_error(lambda: logs(v1, "pull"))
    assert err.status == 400 and "waiting to start: ImagePullBackOff" in json.loads(err.body)["message"]


def test_injected_unschedulable(v1):
    v1.create_namespaced_pod(NS, make_pod("stuck", labels=inject("unschedulable")))
    pod = wait_for(v1, "stuck", unschedulable)
    time.sleep(0.3)
    pod = v1.read_namespaced_pod("stuck", NS)
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    assert condition(pod, "PodScheduled").message.startswith("0/2 nodes are available")


# -- the provider -----------------------------------------------------------------------------------------
def xcom_pod(name: str, result: dict, *, via_env: bool = False) -> client.V1Pod:
    """A pod as the provider builds it with do_xcom_push: the base container writes
    /airflow/xcom/return.json, the xcom sidecar waits to be read and killed."""
    from airflow.providers.cncf.kubernetes.utils.xcom_sidecar import add_xcom_sidecar

    code = "import json, os, sys; open(sys.argv[1] if len(sys.argv) > 1 else os.environ['MLOPS_RESULT_PATH'], 'w')" \
           f".write(json.dumps({result!r})); print('wrote result')"
    env = [client.V1EnvVar(name="MLOPS_RESULT_PATH", value="/airflow/xcom/return.json")] if via_env else None
    pod = make_pod(name, code, env=env, args=None if via_env else ["/airflow/xcom/return.json"])
    return add_xcom_sidecar(pod)


@pytest.mark.parametrize("via_env", [False, True], ids=["argument", "env"])
def test_pod_manager_extracts_xcom_over_exec(v1, via_env):
    from airflow.providers.cncf.kubernetes.utils.pod_manager import PodManager

    manager = PodManager(v1)
    pod = manager.create_pod(xcom_pod("xcom", {"accuracy": 0.93, "run": "r1"}, via_env=via_env))
    asyncio.run(manager.await_pod_start(pod, schedule_timeout=10, startup_timeout=10, check_interval=0.1))
    manager.await_container_completion(pod, "base", polling_time=0.05)
    assert manager.read_pod(pod).status.phase == "Running"  # the sidecar holds the pod until read
    assert manager.container_is_running(pod, "airflow-xcom-sidecar")

    assert json.loads(manager.extract_xcom(pod)) == {"accuracy": 0.93, "run": "r1"}
    done = manager.await_pod_completion(pod)
    assert done.status.phase == "Succeeded"
    assert container(done, "airflow-xcom-sidecar").state.terminated.exit_code == 0
    manager.delete_pod(pod)
    manager.delete_pod(pod)  # a second delete is a 404 the manager ignores


def test_exec_with_stdin_and_exit_code(v1):
    from kubernetes.stream import stream

    v1.create_namespaced_pod(NS, make_pod("shell", SLEEP, env=[client.V1EnvVar(name="GREETING", value="hi")]))
    wait_for(v1, "shell", phase("Running"))
    code = "import os, sys; print(os.environ['GREETING'], sys.stdin.readline().strip().upper()); sys.exit(4)"
    resp = stream(v1.connect_get_namespaced_pod_exec, "shell", NS, container="base",
                  command=[sys.executable, "-c", code], stdin=True, stdout=True, stderr=True, tty=False,
                  _preload_content=False)
    resp.write_stdin("abc\n")
    resp.run_forever(timeout=10)
    assert resp.read_stdout().strip() == "hi ABC" and resp.returncode == 4
    out = stream(v1.connect_get_namespaced_pod_exec, "shell", NS, container="base",
                 command=["/bin/sh", "-c", "echo $GREETING"], stdin=False, stdout=True, stderr=True, tty=False)
    assert out.strip() == "hi"


def test_pod_manager_follows_logs_and_reads_events(v1):
    from airflow.providers.cncf.kubernetes.utils.pod_manager import PodManager

    manager = PodManager(v1)
    code = "import time\nfor i in range(3): print(f'step {i}', flush=True); time.sleep(0.1)"
    pod = manager.create_pod(make_pod("steps", code))
    asyncio.run(manager.await_pod_start(pod, schedule_timeout=10, startup_timeout=10, check_interval=0.1))
    status = manager.fetch_container_logs(pod, "base", follow=True)
    assert status.running is False and status.last_log_time is not None
    lines = [line.decode().strip() for line in manager.read_pod_logs(pod, "base", follow=False)]
    assert [line for line in lines if line] == ["step 0", "step 1", "step 2"]
    assert "Scheduled" in {e.reason for e in manager.read_pod_events(pod).items}


def test_async_clients_used_by_the_trigger(cluster, v1):
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
    from kubernetes_asyncio import client as aclient
    from kubernetes_asyncio import config as aconfig

    v1.create_namespaced_pod(NS, make_pod("async", "print('from async')"))
    wait_for(v1, "async", phase("Succeeded"))

    async def scenario():
        api = aclient.ApiClient(aclient.Configuration())
        await aconfig.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=api.configuration)
        async with api:
            core = aclient.CoreV1Api(api)
            pod = await core.read_namespaced_pod("async", NS)
            events = await core.list_namespaced_event(NS, field_selector="involvedObject.name=async")
        hook = AsyncKubernetesHook(conn_id=None, kubernetes_conn_id=None, config_dict=cluster.kubeconfig_dict())
        log_lines = await hook.read_logs("async", NS, container_name="base")
        hook_events = await hook.get_pod_events("async", NS)
        watched = [e async for e in hook.watch_pod_events("async", NS, timeout_seconds=1)]
        return pod, events, log_lines, hook_events, watched

    pod, events, log_lines, hook_events, watched = asyncio.run(scenario())
    assert pod.status.phase == "Succeeded"
    reasons = {e.reason for e in events.items}
    assert "Scheduled" in reasons and reasons == {e.reason for e in hook_events.items}
    assert any(line.endswith("from async") for line in log_lines)
    assert watched == []  # the hook stops watching a pod that has already finished


def test_async_event_watch_streams_changes(cluster, v1):
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook

    v1.create_namespaced_pod(NS, make_pod("watched", SLEEP))
    wait_for(v1, "watched", phase("Running"))

    async def scenario():
        hook = AsyncKubernetesHook(conn_id=None, kubernetes_conn_id=None, config_dict=cluster.kubeconfig_dict())
        seen = []
        async for event in hook.watch_pod_events("watched", NS, timeout_seconds=1):
            seen.append(event.reason)
            if event.reason == "Started":
                await asyncio.to_thread(v1.delete_namespaced_pod, "watched", NS)
        return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert seen[0] == "Scheduled" and "Started" in seen


def test_sync_watch_and_events_v1(v1):
    from kubernetes import watch

    since = v1.list_namespaced_pod(NS).metadata.resource_version  # the watch replays every change after it
    stream = watch.Watch().stream(v1.list_namespaced_pod, NS, label_selector="app=w", resource_version=since,
                                  timeout_seconds=5)
    v1.create_namespaced_pod(NS, make_pod("w1", labels={"app": "w"}))
    v1.create_namespaced_pod(NS, make_pod("other", labels={"app": "x"}))
    phases = []
    for event in stream:
        assert event["object"].metadata.name == "w1"
        phases.append((event["type"], event["object"].status.phase))
        if event["object"].status.phase == "Succeeded":
            break
    assert phases[0] == ("ADDED", "Pending") and phases[-1] == ("MODIFIED", "Succeeded")

    events = client.EventsV1Api(v1.api_client).list_namespaced_event(NS, field_selector="regarding.name=w1").items
    assert events[0].reason == "Scheduled" and events[0].regarding.kind == "Pod"


# -- the operator, both ways ------------------------------------------------------------------------------
def kpo(cluster, name: str, code: str, **kwargs):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    options = dict(task_id=name, name=name, namespace=NS, image="python:3.11-slim", cmds=[sys.executable, "-c", code],
                   arguments=["/airflow/xcom/return.json"], do_xcom_push=True, get_logs=True,
                   on_finish_action="delete_pod", config_file=str(cluster.kubeconfig), in_cluster=False,
                   kubernetes_conn_id=None, startup_check_interval_seconds=1, poll_interval=0.2)
    return KubernetesPodOperator(**{**options, **kwargs})


def task_context(task_id: str) -> dict:
    from unittest import mock

    ti = mock.MagicMock(dag_id="emulated", task_id=task_id, map_index=-1, try_number=1)
    return {"ti": ti, "task_instance": ti, "run_id": "r1", "dag": mock.MagicMock(parent_dag=None), "params": {}}


WRITE_RESULT = "import json, sys; print('training'); open(sys.argv[1], 'w').write(json.dumps({'acc': 0.9}))"


def test_pod_operator_sync(cluster):
    op = kpo(cluster, "train-sync", WRITE_RESULT)
    assert op.execute(task_context("train-sync")) == {"acc": 0.9}
    assert cluster.state.list_pods() == []  # deleted after the run


def test_pod_operator_deferrable(cluster):
    from airflow.sdk.exceptions import TaskDeferred

    op = kpo(cluster, "train-async", WRITE_RESULT, deferrable=True)
    context = task_context("train-async")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)

    async def first_event():
        async for event in deferred.value.trigger.run():
            return event

    event = asyncio.run(asyncio.wait_for(first_event(), timeout=20))
    assert event.payload["status"] == "success"
    assert getattr(op, deferred.value.method_name)(context, event.payload) == {"acc": 0.9}
    assert cluster.state.list_pods() == []


def test_pod_operator_reports_an_oom_kill(cluster):
    from airflow.sdk.exceptions import AirflowException

    op = kpo(cluster, "doomed-train", SLEEP, on_finish_action="keep_pod")
    with pytest.raises(AirflowException):
        op.execute(task_context("doomed-train"))
    (pod,) = cluster.state.list_pods()
    base = next(cs for cs in pod["status"]["containerStatuses"] if cs["name"] == "base")
    assert base["state"]["terminated"]["reason"] == "OOMKilled" and pod["status"]["phase"] == "Failed"
