"""Routes of the fleet app (mounted at /mlops by plugin.py):

    GET /mlops/api/models                   every model the caller may read, as JSON
    GET /mlops/api/models/{name}            one model (404 unknown, 403 not readable)
    GET /mlops/fleet                        the same as a server-rendered HTML page
    GET /mlops/data-docs/{model}/{path}     the model's GX Data Docs site (validation pages, index)

All of them require an Airflow login (see auth.py); models are filtered by read access to their DAG.
Every response carries a Content-Security-Policy: no script runs on any of them (see data_docs.py for why
Data Docs are sandboxed), and no response echoes more than a short prefix of what was asked for.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from mlops_airflow.fleet.auth import NotAuthenticated, current_user, login_url, readable_dag_ids

NO_STORE = {"Cache-Control": "no-store"}
# For what sets no policy of its own (JSON, errors): nothing to load, run or frame.
DEFAULT_HEADERS = {"Content-Security-Policy": "default-src 'none'; base-uri 'none'; form-action 'none'; "
                                              "frame-ancestors 'none'",
                   "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
# A file name or a path longer than the filesystem allows is a 404, not an OSError.
MAX_SEGMENT_BYTES, MAX_PATH_BYTES = 255, 1024
NAME_SHOWN = 64  # characters of a requested name an error message repeats


def _shown(name: str) -> str:
    """A requested name, quoted, as an error message may repeat it: bounded."""
    return repr(name) if len(name) <= NAME_SHOWN else f"{name[:NAME_SHOWN]!r}... ({len(name)} characters)"


def _airflow_base() -> str:
    from mlops_airflow.links import airflow_base_url

    return airflow_base_url()


def _visible(user, settings) -> set[str]:
    """The model names (spec file stems) whose training DAG the user may read."""
    from mlops.fleet import model_names
    from mlops.spec import dag_id

    names = model_names(settings)
    allowed = readable_dag_ids(user, {dag_id(n, "train") for n in names})
    return {n for n in names if dag_id(n, "train") in allowed}


def _with_airflow(models: list[dict]) -> list[dict]:
    """Add what Airflow knows: DAG pages, the next scheduled training run, the champion's training run."""
    from mlops_airflow.fleet.airflow_state import dag_states

    base = _airflow_base()
    dag_ids = {d for m in models for d in m["dag_ids"].values() if d}
    states = dag_states(dag_ids)
    out = []
    for m in models:
        train = m["dag_ids"]["train"]
        state = states.get(train)
        airflow = {
            "dag_urls": {k: f"{base}/dags/{quote(d, safe='')}" for k, d in m["dag_ids"].items() if d},
            "train_dag_known": state is not None,
            "next_run": state,
            "data_docs_url": f"{base}/mlops/data-docs/{quote(m['model'], safe='')}/index.html"
            if (m.get("last_validation") or {}).get("data_docs") else "",
        }
        for key in ("champion", "previous_champion"):
            v = m.get(key)
            if v and v.get("trained_by_dag_id") and v.get("trained_by_run_id"):
                v["airflow_run_url"] = (f"{base}/dags/{quote(v['trained_by_dag_id'], safe='')}/runs/"
                                        f"{quote(v['trained_by_run_id'], safe='')}")
        out.append({**m, "airflow": airflow})
    return out


def gather(user, only: str | None = None) -> list[dict]:
    from mlops.fleet import fleet_status
    from mlops.settings import get_settings

    settings = get_settings()
    names = _visible(user, settings)
    if only is not None:
        names &= {only}
    return _with_airflow(fleet_status(settings, names))


def create_app() -> FastAPI:
    app = FastAPI(title="mlops fleet", description="Every model's champion, validation and drift status.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    _add_security(app)
    _add_model_routes(app)
    _add_data_docs_route(app)
    return app


def _add_security(app: FastAPI) -> None:
    """The default headers on every response, and a missing login as a 401 (a login page for /fleet)."""

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):
        response = await call_next(request)
        for key, value in DEFAULT_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.exception_handler(NotAuthenticated)
    async def _unauthenticated(request: Request, exc: NotAuthenticated):
        headers = {"WWW-Authenticate": "Bearer", **NO_STORE}
        prefix = request.scope.get("root_path", "")
        if request.url.path.removeprefix(prefix).rstrip("/") == "/fleet":
            from mlops_airflow.fleet.render import POLICY, unauthenticated_page

            # Back to the fleet page after the login, whatever the request's path was.
            return HTMLResponse(unauthenticated_page(exc.detail, login_url(f"{prefix}/fleet")), status_code=401,
                                headers={**headers, "Content-Security-Policy": POLICY})
        return JSONResponse({"detail": exc.detail}, status_code=401, headers=headers)


def _add_model_routes(app: FastAPI) -> None:
    """The models the caller may read, as JSON and as the fleet page."""

    @app.get("/api/models")
    def list_models(user=Depends(current_user)):
        models = gather(user)
        return JSONResponse({"models": models, "total_entries": len(models)}, headers=NO_STORE)

    @app.get("/api/models/{name}")
    def one_model(name: str, user=Depends(current_user)):
        from mlops.fleet import model_names
        from mlops.settings import get_settings

        if name not in model_names(get_settings()):
            raise HTTPException(404, f"no model named {_shown(name)}")
        models = gather(user, only=name)
        if not models:
            raise HTTPException(403, f"you may not read the DAGs of model {_shown(name)}")
        return JSONResponse(models[0], headers=NO_STORE)

    @app.get("/api/models/{name}/versions/{version}/lineage")
    def version_lineage(name: str, version: str, user=Depends(current_user)):
        """What made the version, who let it through, where it served (mlops.lineage)."""
        from mlops.fleet import model_names
        from mlops.lineage.record import UnknownVersion
        from mlops.lineage.record import version_lineage as lineage_of
        from mlops.settings import get_settings
        from mlops.spec import load_spec

        settings = get_settings()
        if name not in model_names(settings):
            raise HTTPException(404, f"no model named {_shown(name)}")
        if name not in _visible(user, settings):
            raise HTTPException(403, f"you may not read the DAGs of model {_shown(name)}")
        try:
            record = lineage_of(settings, load_spec(settings.models_dir / f"{name}.yaml", settings.expectations_dir),
                                version)
        except UnknownVersion as exc:
            raise HTTPException(404, str(exc)) from None
        return JSONResponse(record, headers=NO_STORE)

    @app.get("/fleet", response_class=HTMLResponse)
    def fleet_page(user=Depends(current_user)):
        from mlops.settings import get_settings
        from mlops_airflow.fleet.render import POLICY
        from mlops_airflow.fleet.render import fleet_page as render

        models = gather(user)
        return HTMLResponse(render(models, user_name=_user_name(user), airflow_base=_airflow_base(),
                                   mlflow_ui=get_settings().mlflow_ui_url),
                            headers={**NO_STORE, "Content-Security-Policy": POLICY})

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("fleet")


def _add_data_docs_route(app: FastAPI) -> None:
    """Each model's GX Data Docs site, served to those who may read the model's DAGs."""

    @app.get("/data-docs/{model}/{path:path}")
    def data_docs(model: str, path: str, user=Depends(current_user)):
        from mlops.fleet import data_docs_dir, model_names
        from mlops.settings import get_settings
        from mlops.spec import dag_id
        from mlops_airflow.fleet import data_docs as docs

        settings = get_settings()
        if model not in model_names(settings):
            raise HTTPException(404, "not found")
        train = dag_id(model, "train")
        if train not in readable_dag_ids(user, {train}):
            raise HTTPException(403, f"you may not read the DAGs of model {_shown(model)}")
        base = data_docs_dir(settings, model).resolve()
        relative = path or "index.html"
        target = _site_file(base, relative)
        if target is None:
            raise HTTPException(404, "not found")
        headers = {**NO_STORE, "Content-Security-Policy": docs.POLICY}
        if target == base / "index.html":
            return HTMLResponse(docs.index_page(base, model), headers=headers)
        if target.suffix.lower() in (".html", ".htm"):
            return HTMLResponse(docs.offline_page(target.read_text(encoding="utf-8", errors="replace")),
                                headers=headers)
        return FileResponse(target, headers=headers)


def _site_file(base: Path, relative: str) -> Path | None:
    """The file `relative` names under `base`, or None: outside the site, too long a name, or no file."""
    if len(relative.encode()) > MAX_PATH_BYTES or any(len(part.encode()) > MAX_SEGMENT_BYTES
                                                       for part in relative.split("/")):
        return None
    try:
        target = _inside(base, relative)
        return target if target is not None and target.is_file() else None
    except OSError:  # e.g. ENAMETOOLONG, ELOOP: nothing that can be served
        return None


def _inside(base: Path, relative: str) -> Path | None:
    """`relative` under `base` after resolving '..' and symlinks, else None (no escaping the site)."""
    if "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    target = (base / relative).resolve()
    return target if target.is_relative_to(base) else None


def _user_name(user) -> str:
    try:
        return user.get_name()
    except Exception:  # noqa: BLE001
        return str(getattr(user, "username", "") or "")
