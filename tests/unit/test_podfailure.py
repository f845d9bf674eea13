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
    assert classify(pod({"phase": "Failed", "reason": "Evicted", "message": "node low on memory"}),
                    pool="cpu").retryable
    f = classify(pod({"phase": "Failed", "reason": "Terminated", "message": "spot node reclaimed"}), pool="l4-spot")
    assert f.reason == "preempted" and f.retryable


def test_image_pull_errors_are_not_retried():
    f = classify(pod({"phase": "Pending", "containerStatuses": [{"name": "base", "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": "repo not found"}}}]}), pool="cpu")
    assert f.reason == "image_pull" and not f.retryable and "trainer.image" in f.message


def test_non_zero_exit_shows_the_last_log_lines():
    f = classify(pod(container({"terminated": {"exitCode": 1}})), pool="cpu", log_tail=["a", "ValueError: bad C"])
    assert f.reason == "exit_code" and f.message.endswith("a\nValueError: bad C")


def test_the_trainers_exit_code_decides_the_retry_and_its_last_line_says_why():
    """The same verdict as the local backend: 65 permanent, 75 transient (mlops.failures)."""
    line = "MLOPS_FAILURE permanent authoring: AuthoringError: trainers.churn:train raised InvalidParameterError"
    f = classify(pod(container({"terminated": {"exitCode": 65}})), pool="cpu", log_tail=["Traceback ...", line])
    assert f.reason == "exit_code" and not f.retryable
    assert "exited with code 65 (authoring): AuthoringError: trainers.churn:train raised" in f.message
    assert "Not retried: a retry cannot fix this" in f.message and f.message.endswith(line)

    line = "MLOPS_FAILURE transient network: MlflowException: API request to ... Connection refused"
    f = classify(pod(container({"terminated": {"exitCode": 75}})), pool="cpu", log_tail=[line])
    assert f.retryable and "exited with code 75 (network)" in f.message and "Retried while tries are left" in f.message


def test_a_trainer_without_a_verdict_is_retried():
    """Killed, or crashed before it could classify (an older image): retries are bounded by compute.retries."""
    for code in (1, 143):
        assert classify(pod(container({"terminated": {"exitCode": code}})), pool="cpu", log_tail=["x"]).retryable


def test_the_termination_message_stands_in_for_unreadable_logs():
    message = "MLOPS_FAILURE permanent data_changed: DataChangedError: the window changed after validation"
    f = classify(pod(container({"terminated": {"exitCode": 65, "message": message}})), pool="cpu")
    assert not f.retryable and "(data_changed): DataChangedError: the window changed" in f.message


def test_active_deadline():
    f = classify(pod({"phase": "Failed", "reason": "DeadlineExceeded"}), pool="cpu")
    assert f.reason == "deadline" and not f.retryable and "compute.timeout_minutes" in f.message
