"""One model server process: MLflow's scoring app (`mlflow.pyfunc.scoring_server.app`, what `mlflow models
serve` runs) under uvicorn, listening on sockets it inherited from the supervisor (`--fd`, repeatable: the
model's shared socket and the process's own one, for health checks that reach this process only).

The one addition to MLflow's app: each response names the model and version that made it
(`x-mlops-model`, `x-mlops-model-version`), so a client can tell which version answered during a rollout.

    __pyfunc_model_path__=<local model dir> python -m mlops.serving.worker --fd 5 [--fd 6]
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
from typing import Any, Awaitable, Callable

MODEL_HEADER = "x-mlops-model"
VERSION_HEADER = "x-mlops-model-version"
MODEL_ENV, VERSION_ENV = "MLOPS_SERVING_MODEL", "MLOPS_SERVING_VERSION"

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def with_version_headers(app: ASGIApp, model: str, version: str) -> ASGIApp:
    """The app, with the model's name and version added to every HTTP response's headers."""
    extra = [(MODEL_HEADER.encode(), model.encode()), (VERSION_HEADER.encode(), version.encode())]

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m mlops.serving.worker", description=__doc__.split("\n\n")[0])
    p.add_argument("--fd", type=int, action="append", default=[], help="an inherited listening socket")
    p.add_argument("--host", default=None, help="without --fd: listen here (containers)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--graceful-seconds", type=int, default=30, help="time to finish open requests on SIGTERM")
    args = p.parse_args(argv)
    # Loading the model is the import: a model that cannot load ends the process here, before it listens.
    app = importlib.import_module("mlflow.pyfunc.scoring_server.app").app
    served = with_version_headers(app, os.environ.get(MODEL_ENV, ""), os.environ.get(VERSION_ENV, ""))
    config = uvicorn.Config(served, host=args.host or "0.0.0.0", port=args.port,  # noqa: S104 - a container's port
                            lifespan="off", access_log=False, log_level="warning",
                            timeout_graceful_shutdown=args.graceful_seconds, timeout_keep_alive=5)
    server = uvicorn.Server(config)
    server.run(sockets=[socket.socket(fileno=fd) for fd in args.fd] if args.fd else None)


if __name__ == "__main__":
    main()
