"""What the node agent needs to run a container as a local process: its environment (plain values,
Secret references, the downward API), its argv with `$(VAR)` expansion, a per-pod sandbox folder that
stands in for the pod's `/airflow/xcom` volume, and the process itself with its output captured.

The container's "image" is the host: command[0] is run as given (or through the Cluster's `executables`
map, e.g. {"python": sys.executable}), so tests pass `sys.executable` as command[0].
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

XCOM_DIR = "/airflow/xcom"
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ConfigError(Exception):
    """The container cannot be created (kubelet's CreateContainerConfigError), e.g. a missing Secret."""


class Sandbox:
    """A pod's private folder; `/airflow/xcom/...` paths in argv, env, exec commands and stdin are
    rewritten into it, which is how the container's result file and the sidecar's `cat` meet. The mount
    paths of the pod's emptyDir volumes are rewritten the same way (`mount`), so an init container that
    writes to /mnt/models and the server that reads it meet in one folder."""

    def __init__(self, root: Path):
        self.root = root
        self.xcom_dir = root / "airflow" / "xcom"
        self.xcom_dir.mkdir(parents=True, exist_ok=True)
        self.mounts: dict[str, Path] = {XCOM_DIR: self.xcom_dir}

    def mount(self, mount_path: str, volume: str) -> None:
        folder = self.root / "volumes" / volume
        folder.mkdir(parents=True, exist_ok=True)
        self.mounts[mount_path.rstrip("/")] = folder

    def rewrite(self, text: str) -> str:
        for path in sorted(self.mounts, key=len, reverse=True):  # the most specific mount wins
            text = text.replace(path, str(self.mounts[path]))
        return text

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined variables are replaced, `$$` is a literal `$`."""
    return _VAR_REF.sub(lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), text)


def _secret_value(secrets: Callable[[str], dict | None], ref: dict) -> str | None:
    secret = secrets(ref["name"])
    optional = bool(ref.get("optional"))
    if secret is None:
        if optional:
            return None
        raise ConfigError(f'secret "{ref["name"]}" not found')
    data = {**{k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()},
            **(secret.get("stringData") or {})}
    if ref["key"] not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in Secret {secret['metadata']['namespace']}/{ref['name']}")
    return data[ref["key"]]


def _field_value(pod: dict, path: str) -> str:
    value: object = pod
    for part in re.findall(r"[^.\[\]']+", path):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def container_env(pod: dict, container: dict, secrets: Callable[[str], dict | None]) -> dict[str, str]:
    """The variables the container sees, in the kubelet's order: envFrom, then env (later wins)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        _add_env_from(env, source, secrets)
    for var in container.get("env") or []:
        _add_env_var(env, var, pod, secrets)
    return env


def _add_env_from(env: dict[str, str], source: dict, secrets: Callable[[str], dict | None]) -> None:
    """One envFrom entry: every key of a Secret (under its prefix); ConfigMaps do not exist here."""
    if ref := source.get("secretRef"):
        secret = secrets(ref["name"])
        if secret is None:
            if ref.get("optional"):
                return
            raise ConfigError(f'secret "{ref["name"]}" not found')
        for key in {**(secret.get("data") or {}), **(secret.get("stringData") or {})}:
            env[source.get("prefix", "") + key] = _secret_value(secrets, {"name": ref["name"], "key": key}) or ""
    elif ref := source.get("configMapRef"):
        if not ref.get("optional"):
            raise ConfigError(f'configmap "{ref["name"]}" not found (the emulator has no ConfigMaps)')


def _add_env_var(env: dict[str, str], var: dict, pod: dict, secrets: Callable[[str], dict | None]) -> None:
    """One env entry: a value (with `$(VAR)` expanded against what is set so far) or a valueFrom source."""
    source = var.get("valueFrom")
    if source is None:
        env[var["name"]] = expand(var.get("value", ""), env)
    elif ref := source.get("secretKeyRef"):
        value = _secret_value(secrets, ref)
        if value is not None:
            env[var["name"]] = value
    elif ref := source.get("fieldRef"):
        env[var["name"]] = _field_value(pod, ref["fieldPath"])
    elif ref := source.get("configMapKeyRef"):
        if not ref.get("optional"):
            raise ConfigError(f'configmap "{ref["name"]}" not found (the emulator has no ConfigMaps)')
    else:
        raise ConfigError(f"env {var['name']}: this valueFrom source is not emulated")


def container_argv(container: dict, env: dict[str, str], sandbox: Sandbox, executables: dict[str, str],
                   ports: dict[int, int] | None = None) -> list[str]:
    """argv with `$(VAR)` expanded and the sandbox's paths; with `ports`, the pod network too (see
    `publish`)."""
    argv = [sandbox.rewrite(expand(a, env)) for a in (container.get("command") or []) + (container.get("args") or [])]
    if argv:
        argv[0] = executables.get(argv[0], argv[0])
    return [publish(a, ports) for a in argv] if ports else argv


def publish(token: str, ports: dict[int, int]) -> str:
    """Pods share the host's network here, so each declared containerPort gets a free loopback port: an
    argv token (or env value) that is exactly a declared port number becomes its host port, and the
    wildcard address 0.0.0.0 becomes 127.0.0.1 (nothing listens beyond loopback)."""
    if token == "0.0.0.0":  # noqa: S104 - rewritten away from the wildcard
        return "127.0.0.1"
    if token.isdigit() and int(token) in ports:
        return str(ports[int(token)])
    return token


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exit_code(returncode: int) -> int:
    """A signal death reads as 128 + signal, as in a container runtime."""
    return 128 - returncode if returncode < 0 else returncode


class ContainerProcess:
    """One container as a local process in its own session (so the whole tree can be killed), with each
    output line handed to `on_line` and the exit code to `on_exit` after the output is drained."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path,
                 on_line: Callable[[str], None], on_exit: Callable[[int], None]):
        self.argv, self.env, self.cwd = argv, env, cwd
        self.on_line, self.on_exit = on_line, on_exit
        self.proc: subprocess.Popen | None = None
        self.started_at = time.time()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                   for stream in (self.proc.stdout, self.proc.stderr)]
        for reader in readers:
            reader.start()
        threading.Thread(target=self._wait, args=(readers,), daemon=True, name=f"wait-{self.proc.pid}").start()

    def _read(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.on_line(raw.decode("utf-8", "replace").rstrip("\n"))
        stream.close()

    def _wait(self, readers: list[threading.Thread]) -> None:
        code = self.proc.wait()
        for reader in readers:
            reader.join(timeout=5)
        self.on_exit(exit_code(code))

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def term(self) -> None:
        """SIGTERM to the container's process group: what the kubelet sends when a pod is deleted."""
        if self.alive:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
