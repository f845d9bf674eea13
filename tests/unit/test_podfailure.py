from mlops.podfailure import classify


def pod(status, memory="8Gi"):
    return {"metadata": {"name": "train-churn-abc"},
            "spec": {"containers": [{"name": "base", "resources": {"limits": {"memory": memory}}}]},
            "status": status}


def container(state, last=None):
    return {"phase": "Failed", "containerStatuses": [{"name": "base", "state": state, "lastState": last or {}}]}


def test_oom_killed_names_container_and_limit_and_is_not_retried():
    f = classify(pod(container({"terminated": {"reason": "OOMKilled", "exitCode": 137}}), "4Gi"), pool="l4")
    assert f.reason == "oom_killed" and not f.retryable
    assert "container 'base'" in f.message and "memory limit 4Gi" in f.message and "compute.memory" in f.message


def test_unschedulable_names_pool_and_what_was_missing_and_is_retried():
    status = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
              "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}
    f = classify(pod(status), pool="h100-spot")
    assert f.reason == "unschedulable" and f.retryable
    assert "pool 'h100-spot'" in f.message and "Insufficient nvidia.com/gpu" in f.message


def test_eviction_and_preemption_are_retried():
    assert classify(pod({"phase": "Failed", "reason": "Evicted", "message": "node low on memory"}), pool="cpu").retryable
    f = classify(pod({"phase": "Failed", "reason": "Terminated", "message": "spot node reclaimed"}), pool="l4-spot")
    assert f.reason == "preempted" and f.retryable


def test_image_pull_errors_are_not_retried():
    f = classify(pod({"phase": "Pending", "containerStatuses": [{"name": "base", "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": "repo not found"}}}]}), pool="cpu")
    assert f.reason == "image_pull" and not f.retryable and "trainer.image" in f.message


def test_non_zero_exit_shows_the_last_log_lines():
    f = classify(pod(container({"terminated": {"exitCode": 1}})), pool="cpu", log_tail=["a", "ValueError: bad C"])
    assert f.reason == "exit_code" and not f.retryable and f.message.endswith("a\nValueError: bad C")


def test_active_deadline():
    f = classify(pod({"phase": "Failed", "reason": "DeadlineExceeded"}), pool="cpu")
    assert f.reason == "deadline" and not f.retryable and "compute.timeout_minutes" in f.message
