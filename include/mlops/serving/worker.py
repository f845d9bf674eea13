"""One model server process: MLflow's scoring app (`mlflow.pyfunc.scoring_server.app`, what `mlflow models
serve` runs) under uvicorn, listening on sockets it inherited from the supervisor (`--fd`, repeatable: the
model's shared socket and the process's own one, for health checks that reach this process only).

What it adds to MLflow's app and uvicorn:
- each response names the model and version that made it (`x-mlops-model`, `x-mlops-model-version`), so a
  client can tell which version answered during a rollout;
- a pre-stop phase: on SIGTERM the process answers for `--prestop-seconds` with `connection: close`, so
  keep-alive clients reconnect elsewhere instead of finding their idle connection closed under a request;
  then uvicorn's graceful shutdown finishes what is left. On inherited sockets it stops accepting at once
  (the other processes on the shared socket take new connections); listening itself (`--host`, in a pod)
  it goes on accepting through the pre-stop, while the pod's removal from its Service's endpoints reaches
  every proxy, so a connection routed there just before is still answered;
- `--lifeline FD`: the read end of a pipe whose write end only the supervisor holds; when the supervisor
  ends (even by SIGKILL) the pipe closes and the server drains and exits, so no server outlives it.

    __pyfunc_model_path__=<local model dir> python -m mlops.serving.worker --fd 5 [--fd 6] [--lifeline 7]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import socket
import threading
from types import FrameType
from typing import Any, Awaitable, Callable

MODEL_HEADER = "x-mlops-model"
VERSION_HEADER = "x-mlops-model-version"
MODEL_ENV, VERSION_ENV = "MLOPS_SERVING_MODEL", "MLOPS_SERVING_VERSION"

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def with_version_headers(app: ASGIApp, model: str, version: str,
                         draining: Callable[[], bool] = lambda: False) -> ASGIApp:
    """The app, with the model's name and version added to every HTTP response's headers (and
    `connection: close` while the process drains)."""
    extra = [(MODEL_HEADER.encode(), model.encode()), (VERSION_HEADER.encode(), version.encode())]
    close = [(b"connection", b"close")]

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *extra, *(close if draining() else [])]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def _draining_server(config: Any, prestop_seconds: float, close_at_once: bool = True) -> Any:
    """uvicorn's Server, with the pre-stop phase before its own graceful shutdown."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        draining = False
        loop: asyncio.AbstractEventLoop | None = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().startup(sockets=sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.draining or self.loop is None or prestop_seconds <= 0:
                super().handle_exit(sig, frame)
                return
            self.loop.call_soon_threadsafe(self.begin_drain, sig)

        def begin_drain(self, sig: int) -> None:
            if self.draining:
                return
            self.draining = True
            for server in getattr(self, "servers", []) if close_at_once else []:
                server.close()  # this process's copy of the sockets: new connections go to the other processes
            assert self.loop is not None
            self.loop.call_later(prestop_seconds, uvicorn.Server.handle_exit, self, sig, None)

    return DrainingServer(config)


def _watch_lifeline(fd: int, server: Any) -> None:
    """Block on the supervisor's pipe; its end (EOF) means the supervisor is gone: drain and exit."""
    def watch() -> None:
        while os.read(fd, 1):
            pass
        if server.loop is not None:
            server.loop.call_soon_threadsafe(server.begin_drain, signal.SIGTERM)
        else:  # still loading the model
            os._exit(0)

    threading.Thread(target=watch, daemon=True, name="lifeline").start()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m mlops.serving.worker", description=__doc__.split("\n\n")[0])
    p.add_argument("--fd", type=int, action="append", default=[], help="an inherited listening socket")
    p.add_argument("--host", default=None, help="without --fd: listen here (containers)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--graceful-seconds", type=int, default=30, help="time to finish open requests on SIGTERM")
    p.add_argument("--prestop-seconds", type=float, default=2.0,
                   help="on SIGTERM, answer with connection: close this long before shutting down")
    p.add_argument("--lifeline", type=int, help="a pipe's read end: exit when it closes")
    args = p.parse_args(argv)
    # Loading the model is the import: a model that cannot load ends the process here, before it listens.
    app = importlib.import_module("mlflow.pyfunc.scoring_server.app").app
    holder: dict[str, Any] = {}
    served = with_version_headers(app, os.environ.get(MODEL_ENV, ""), os.environ.get(VERSION_ENV, ""),
                                  lambda: bool(getattr(holder.get("server"), "draining", False)))
    config = uvicorn.Config(served, host=args.host or "0.0.0.0", port=args.port,  # noqa: S104 - a container's port
                            lifespan="off", access_log=False, log_level="warning",
                            timeout_graceful_shutdown=args.graceful_seconds, timeout_keep_alive=5)
    server = holder["server"] = _draining_server(config, args.prestop_seconds, close_at_once=bool(args.fd))
    if args.lifeline is not None:
        _watch_lifeline(args.lifeline, server)
    server.run(sockets=[socket.socket(fileno=fd) for fd in args.fd] if args.fd else None)


if __name__ == "__main__":
    main()
