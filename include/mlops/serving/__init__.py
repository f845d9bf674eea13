"""Online serving: a model's deployed version answers requests through MLflow's scoring server.

- `worker`: the server process (MLflow's scoring app under uvicorn, on sockets it inherits).
- `supervisor`, `control`: the local backend's long-lived supervisor, which owns each model's listening
  socket (the stable address) and the server processes, and the client that talks to it.
- `smoke`, `bake`: the gates a new version passes before it takes the traffic.
- `records`: the `deployed` alias, its audit records and the record of each rollout.
- `rollout`: the deploy steps, the same for every backend; `backends/` the backends.
- `python -m mlops.serving`: serve the deployed versions in the foreground, find or call an endpoint.
"""
