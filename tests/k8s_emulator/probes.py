"""HTTP startup, readiness and liveness probes of workload pods (see agent.py), as the kubelet runs them.

Each running container with an `httpGet` probe is probed on its loopback host port. A probe runs every
periodSeconds cut to `max_period` (0.2 s by default), so a server that comes up is seen at once; a
failure only counts as final once both failureThreshold probes in a row failed and the real
periodSeconds x failureThreshold have passed, so a slow start is given the time the manifest gives it.
Readiness and liveness wait for the startup probe to pass. A readiness result sets the container's
`ready` (and so the pod's Ready condition, which decides whether a Service routes to it); a failed
startup or liveness probe kills the container, which is then restarted like any exited workload one.
"""

from __future__ import annotations

import http.client
import threading
import time
import traceback
from dataclasses import dataclass

from . import status as st
from .state import ApiError, State


@dataclass
class _Track:
    started: float
    last: float = 0.0
    successes: int = 0
    failures: int = 0
    failing_since: float = 0.0
    passed: bool = False  # startup probes: once passed, never run again for this process

    def failed_for_good(self, probe: dict) -> bool:
        threshold = int(probe.get("failureThreshold", 3))
        return (self.failures >= threshold
                and time.monotonic() - self.failing_since >= float(probe.get("periodSeconds", 10)) * (threshold - 1))


class Prober(threading.Thread):
    def __init__(self, state: State, agent, *, tick: float = 0.05, max_period: float = 0.2):
        super().__init__(daemon=True, name="k8s-emulator-prober")
        self.state, self.agent, self.tick, self.max_period = state, agent, tick, max_period
        self._tracks: dict[tuple[str, str, str, str], _Track] = {}  # (uid, container, kind, startedAt)
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.probe_all()
            except Exception:  # noqa: BLE001 - a bug in one pass must not stop the prober
                traceback.print_exc()
            self._halt.wait(self.tick)

    def probe_all(self) -> None:
        for pod in self.state.list_pods():
            if pod["metadata"].get("deletionTimestamp") or pod["status"].get("phase") != "Running":
                continue
            for container in pod["spec"]["containers"]:
                if not self._startup_passed(pod, container):
                    continue
                for kind in ("readinessProbe", "livenessProbe"):
                    if (container.get(kind) or {}).get("httpGet"):
                        self._maybe_probe(pod, container, kind)


    def _startup_passed(self, pod: dict, container: dict) -> bool:
        """Whether the container's startup probe has passed (True without one)."""
        if not (container.get("startupProbe") or {}).get("httpGet"):
            return True
        track = self._maybe_probe(pod, container, "startupProbe")
        return bool(track and track.passed)

    def _maybe_probe(self, pod: dict, container: dict, kind: str) -> _Track | None:
        name = container["name"]
        cs = next((c for c in pod["status"].get("containerStatuses") or [] if c["name"] == name), {})
        running = (cs.get("state") or {}).get("running")
        if not running:
            return None
        rt = self.agent.runtime(pod["metadata"]["uid"])
        proc = rt.processes.get(name) if rt else None
        if rt is None or proc is None or not proc.alive or rt.terminating:
            return None
        probe = container[kind]
        key = (pod["metadata"]["uid"], name, kind, str(id(proc)))
        track = self._tracks.setdefault(key, _Track(started=time.monotonic()))
        now = time.monotonic()
        period = min(float(probe.get("periodSeconds", 10)), self.max_period)
        if track.passed or now - track.started < float(probe.get("initialDelaySeconds", 0)):
            return track
        if now - track.last < period:
            return track
        track.last = now
        ok, why = self._get(rt, probe)
        if ok:
            track.successes, track.failures = track.successes + 1, 0
        else:
            if track.failures == 0:
                track.failing_since = now
            track.successes, track.failures = 0, track.failures + 1
        if kind == "readinessProbe":
            self._readiness(pod, name, cs, probe, track, ok, why)
        elif kind == "startupProbe" and ok:
            track.passed = True
        elif not ok and track.failed_for_good(probe):
            what = "startup" if kind == "startupProbe" else "liveness"
            self._event(pod, name, f"{what.capitalize()} probe failed: {why}")
            self.agent._event(pod, "Killing", f"Container {name} failed {what} probe, will be restarted",
                              f"spec.containers{{{name}}}")
            track.failures = 0
            proc.kill()
        return track

    def _readiness(self, pod: dict, name: str, cs: dict, probe: dict, track: _Track, ok: bool, why: str) -> None:
        ready = bool(cs.get("ready"))
        if ok and not ready and track.successes >= int(probe.get("successThreshold", 1)):
            self._set_ready(pod, name, True)
        elif not ok and ready and track.failed_for_good(probe):
            self._set_ready(pod, name, False)
            self._event(pod, name, f"Readiness probe failed: {why}")
        elif not ok and not ready and track.failures == 1:
            self._event(pod, name, f"Readiness probe failed: {why}")

    def _get(self, rt, probe: dict) -> tuple[bool, str]:
        get = probe["httpGet"]
        port = rt.host_port(get.get("port"))
        if port is None:
            return False, f"port {get.get('port')!r} is not a declared containerPort"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=float(probe.get("timeoutSeconds", 1)))
        try:
            conn.request("GET", get.get("path", "/"))
            code = conn.getresponse().status
        except OSError as exc:
            return False, f'Get "http://{rt.name}:{get.get("port")}{get.get("path", "/")}": {exc}'
        finally:
            conn.close()
        return 200 <= code < 400, f"HTTP probe failed with statuscode: {code}"

    def _set_ready(self, pod: dict, name: str, ready: bool) -> None:
        def mutate(p: dict) -> None:
            cs = st.container_status(p, name)
            if (cs.get("state") or {}).get("running"):
                cs["ready"] = ready
                st.refresh_phase(p)
        try:
            meta = pod["metadata"]
            self.state.update_pod(meta["namespace"], meta["name"], mutate, uid=meta["uid"])
        except ApiError:
            pass

    def _event(self, pod: dict, name: str, message: str) -> None:
        self.state.record_event(pod, "Unhealthy", message, type_="Warning", field_path=f"spec.containers{{{name}}}")
