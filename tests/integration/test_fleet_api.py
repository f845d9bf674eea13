"""The plugin through the real `airflow api-server`: the fleet API and page behind Airflow's auth manager
(anonymous, forged and expired tokens refused; a restricted user sees only the models whose DAGs they may
read), the Data Docs route, and the operator extra links of a training run made with dag.test() against the
same metadata DB and MLflow store."""

import time
from urllib.parse import quote

import jwt
import pytest
import requests

from conftest import FLEET_JWT_SECRET as SECRET
from conftest import FLEET_USERS as USERS
from helpers import ROOT


@pytest.fixture(scope="module")
def trained(fleet_server):
    """churn trained and promoted once through its DAG; the API server up over the same DB and store."""
    return fleet_server["url"], fleet_server["run_id"]


def token(url, user):
    r = requests.post(f"{url}/auth/token", json={"username": user, "password": USERS[user][1]}, timeout=30)
    assert r.status_code in (200, 201), r.text
    return r.json()["access_token"]


def bearer(tok):
    return {"Authorization": f"Bearer {tok}"}


def test_anonymous_forged_and_expired_tokens_are_refused(trained):
    url, _ = trained
    for path in ("/mlops/api/models", "/mlops/api/models/churn", "/mlops/data-docs/churn/index.html"):
        r = requests.get(f"{url}{path}", timeout=30)
        assert r.status_code == 401, (path, r.status_code, r.text)
    page = requests.get(f"{url}/mlops/fleet", timeout=30)
    assert page.status_code == 401 and "Log in to Airflow" in page.text and "/auth/login" in page.text

    claims = jwt.decode(token(url, "admin"), options={"verify_signature": False})
    forged = jwt.encode(claims, "another-key-entirely", algorithm="HS512")
    r = requests.get(f"{url}/mlops/api/models", headers=bearer(forged), timeout=30)
    assert r.status_code == 401 and r.json()["detail"] == "Invalid token"
    r = requests.get(f"{url}/mlops/fleet", cookies={"_token": forged}, timeout=30)
    assert r.status_code == 401
    expired = jwt.encode({**claims, "iat": int(time.time()) - 7200, "nbf": int(time.time()) - 7200,
                          "exp": int(time.time()) - 3600}, SECRET, algorithm="HS512")
    r = requests.get(f"{url}/mlops/api/models", headers=bearer(expired), timeout=30)
    assert r.status_code == 401, r.text
    r = requests.get(f"{url}/mlops/api/models", headers={"Authorization": "Bearer "}, timeout=30)
    assert r.status_code == 401


def test_models_with_champion_for_a_valid_token(trained):
    url, run_id = trained
    r = requests.get(f"{url}/mlops/api/models", headers=bearer(token(url, "admin")), timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    models = {m["model"]: m for m in r.json()["models"]}
    assert {"churn", "demand", "demand_nn"} <= set(models)
    churn = models["churn"]
    ch = churn["champion"]
    assert ch["version"] == "1" and ch["trained_by_run_id"] == run_id and 0.6 < ch["value"] < 1
    assert (ch["window_first_day"], ch["window_last_day"]) == ("2025-12-25", "2026-01-14")
    assert ch["promoted_by"] == f"airflow:churn__train/{run_id}" and ch["promotion_action"] == "promote"
    assert ch["mlflow_run_url"] == f"http://localhost:5000/#/runs/{ch['mlflow_run_id']}"
    assert ch["airflow_run_url"] == f"/dags/churn__train/runs/{quote(run_id, safe='')}"
    assert churn["previous_champion"] is None and churn["last_drift"] is None
    assert churn["last_validation"]["success"] is True
    assert churn["airflow"]["dag_urls"]["train"] == "/dags/churn__train"
    assert churn["airflow"]["train_dag_known"] is True
    assert set(churn["airflow"]["next_run"]) >= {"next_dagrun", "next_dagrun_create_after", "is_paused"}
    assert models["demand"]["champion"] is None

    one = requests.get(f"{url}/mlops/api/models/churn", headers=bearer(token(url, "admin")), timeout=60)
    assert one.status_code == 200 and one.json()["champion"]["version"] == "1"
    assert requests.get(f"{url}/mlops/api/models/nope", headers=bearer(token(url, "admin")),
                        timeout=30).status_code == 404


def test_a_versions_lineage_through_the_api_and_the_command_line(trained, fleet_server):
    import json
    import os
    import subprocess
    import sys

    url, run_id = trained
    r = requests.get(f"{url}/mlops/api/models/churn/versions/1/lineage", headers=bearer(token(url, "admin")),
                     timeout=60)
    assert r.status_code == 200, r.text
    lineage = r.json()
    assert lineage["airflow"] == {"dag_id": "churn__train", "run_id": run_id,
                                  "logical_date": lineage["airflow"]["logical_date"]}
    assert lineage["airflow"]["logical_date"].startswith("2026-01-15")
    data = lineage["data"]
    assert (data["first_day"], data["last_day"]) == ("2025-12-25", "2026-01-14") and len(data["fingerprint"]) == 32
    assert len(data["partitions"]) == 21 and data["partitions"][-1]["name"].endswith("date=2026-01-14/part-0.parquet")
    assert lineage["code"]["git_sha"] and lineage["code"]["code_version"] and lineage["code"]["image_digest"]
    assert lineage["validation"]["success"] is True and lineage["validation"]["evaluated"] > 10
    assert lineage["cost"]["pool"] == "cpu" and lineage["cost"]["wall_seconds"] > 0
    [promotion] = lineage["promotions"]
    assert promotion["actor"] == f"airflow:churn__train/{run_id}" and promotion["approved_by"] is None
    assert lineage["deploys"] == [] and lineage["served"] == []
    bob = bearer(token(url, "bob"))
    assert requests.get(f"{url}/mlops/api/models/churn/versions/1/lineage", headers=bob, timeout=30).status_code == 403
    missing = requests.get(f"{url}/mlops/api/models/churn/versions/9/lineage", headers=bearer(token(url, "admin")),
                           timeout=30)
    assert missing.status_code == 404 and "has no version 9" in missing.json()["detail"]

    # the same from a plain shell, by alias
    env = {**os.environ, "MLOPS_HOME": str(fleet_server["home"])}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run([sys.executable, "-m", "mlops.lineage", "churn", "champion"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("churn v1 (MLflow run ") and f"trained by   churn__train / {run_id}" in out.stdout
    assert "validation   passed" in out.stdout and "partitions   21: " in out.stdout
    as_json = subprocess.run([sys.executable, "-m", "mlops.lineage", "churn", "1", "--json"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert json.loads(as_json.stdout)["data"] == data
    wrong = subprocess.run([sys.executable, "-m", "mlops.lineage", "churn", "7"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert wrong.returncode == 2 and "churn has no version 7" in wrong.stderr


def test_html_page_with_the_ui_cookie(trained):
    url, run_id = trained
    r = requests.get(f"{url}/mlops/fleet", cookies={"_token": token(url, "admin")}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<h1>Model fleet</h1>" in html and "visible to admin" in html
    for model in ("churn", "demand", "demand_nn"):
        assert f"id='{model}'" in html
    assert 'href="http://localhost:5000/#/models/churn/versions/1"' in html
    assert 'href="/dags/churn__train"' in html and f"/dags/churn__train/runs/{quote(run_id, safe='')}" in html
    assert 'href="/mlops/data-docs/churn/index.html"' in html and "passed" in html
    assert "<script" not in html and "http" not in html.split("<body>")[0].replace("http-equiv", "")


def test_a_restricted_user_sees_only_their_models(trained):
    url, _ = trained
    bob = bearer(token(url, "bob"))
    r = requests.get(f"{url}/mlops/api/models", headers=bob, timeout=60)
    assert r.status_code == 200 and [m["model"] for m in r.json()["models"]] == ["demand"]
    assert requests.get(f"{url}/mlops/api/models/churn", headers=bob, timeout=30).status_code == 403
    assert requests.get(f"{url}/mlops/data-docs/churn/index.html", headers=bob, timeout=30).status_code == 403
    page = requests.get(f"{url}/mlops/fleet", headers=bob, timeout=60).text
    assert "id='demand'" in page and "id='churn'" not in page
    alice = requests.get(f"{url}/mlops/api/models", headers=bearer(token(url, "alice")), timeout=60).json()
    assert [m["model"] for m in alice["models"]] == ["churn"]


def test_data_docs_are_served_inside_the_site_only(trained):
    url, _ = trained
    admin = bearer(token(url, "admin"))
    r = requests.get(f"{url}/mlops/data-docs/churn/index.html", headers=admin, timeout=30)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    for path in ("churn/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "churn/%2e%2e/%2e%2e/audit", "nope/index.html",
                 "churn/..%2Fmanual", "churn/missing.html"):
        r = requests.get(f"{url}/mlops/data-docs/{path}", headers=admin, timeout=30)
        assert r.status_code == 404, (path, r.status_code)


def test_extra_links_through_the_rest_api(trained):
    url, run_id = trained
    admin = bearer(token(url, "admin"))

    def links(task_id):
        r = requests.get(f"{url}/api/v2/dags/churn__train/dagRuns/{quote(run_id, safe='')}/taskInstances/"
                         f"{task_id}/links", headers=admin, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["extra_links"]

    train = links("train")
    assert train["MLflow run"].startswith("http://localhost:5000/#/runs/")
    run = train["MLflow run"].rsplit("/", 1)[1]
    champion_run = requests.get(f"{url}/mlops/api/models/churn", headers=admin, timeout=60).json()["champion"]
    assert run == champion_run["mlflow_run_id"]
    assert links("evaluate") == {"Model version": "http://localhost:5000/#/models/churn/versions/1"}
    assert links("promote") == {"Model version": "http://localhost:5000/#/models/churn/versions/1"}
    docs = links("validate_data")["Data Docs"]
    assert docs.startswith("/mlops/data-docs/churn/validations/") and docs.endswith(".html"), docs
    page = requests.get(f"{url}{docs}", headers=admin, timeout=30)
    assert page.status_code == 200 and "churn.rows" in page.text
    assert requests.get(f"{url}{docs}", timeout=30).status_code == 401


def test_the_plugin_loads_alone_and_cheaply():
    """Every Airflow process (tasks included) loads the plugin: once, from the package's entry point, and
    nothing heavy."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from airflow import plugins_manager as pm\n"
            "plugins, errors = pm._get_plugins()\n"
            "assert not errors, errors\n"
            "p, = [p for p in plugins if p.name == 'mlops']\n"
            "print(sorted(l.name for l in p.operator_extra_links), p.fastapi_apps[0]['url_prefix'],"
            " p.external_views[0]['href'], \"value='mlops_airflow.plugin:MlopsPlugin'\" in str(p.source))\n"
            "print(sorted(m for m in ('mlflow', 'fastapi', 'pandas', 'great_expectations', 'sklearn',"
            " 'mlops_airflow.fleet.app', 'mlops_airflow.builders.factory') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "['Data Docs', 'Endpoint health', 'MLflow run', 'Model version'] /mlops /mlops/fleet True"
    assert lines[-1] == "[]", lines[-1]


def _csp(response) -> dict[str, str]:
    """The Content-Security-Policy header as directive -> value."""
    policy = response.headers.get("content-security-policy", "")
    return {d.split()[0]: " ".join(d.split()[1:]) for d in policy.split(";") if d.strip()}


def _a_validation_page(trained_home) -> str:
    docs = trained_home / "reports" / "churn" / "data_docs"
    page = min((docs / "validations").rglob("*.html"))
    return page.relative_to(docs).as_posix()


def test_data_docs_are_sandboxed_and_load_nothing_from_other_sites(trained, fleet_server):
    """A value in the data ends up in the Data Docs HTML: the page may not run anything with the user's
    authority (CSP sandbox, no scripts), nor pull scripts or styles from public CDNs."""
    import re

    url, _ = trained
    admin = bearer(token(url, "admin"))
    for path in ("index.html", _a_validation_page(fleet_server["home"])):
        r = requests.get(f"{url}/mlops/data-docs/churn/{path}", headers=admin, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (path, r.status_code)
        csp = _csp(r)
        assert "sandbox" in csp and "allow-scripts" not in csp["sandbox"] and "allow-same-origin" not in csp["sandbox"]
        assert csp["default-src"] == "'none'" and "script-src" not in csp, csp
        assert r.headers["x-content-type-options"] == "nosniff"
        html = r.text
        assert "churn" in html and "<style" in html  # still a readable page, with a local stylesheet
        third_party = re.findall(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^>]*>"""
                                 r"""|url\(\s*["']?\s*(?:https?:)?//[^)]*\)""", html, re.I)
        assert third_party == [], (path, third_party[:3])
        assert "<script" not in html.lower(), path
    static = requests.get(f"{url}/mlops/data-docs/churn/static/images/favicon.ico", headers=admin, timeout=30)
    assert static.status_code == 200 and "sandbox" in _csp(static)
    assert static.headers["x-content-type-options"] == "nosniff"


def test_fleet_pages_and_api_have_a_strict_policy(trained):
    """No script may run on the platform's own pages; the one inline stylesheet is allowed by its hash."""
    import base64
    import hashlib
    import re

    url, _ = trained
    admin = token(url, "admin")
    page = requests.get(f"{url}/mlops/fleet", cookies={"_token": admin}, timeout=60)
    login = requests.get(f"{url}/mlops/fleet", timeout=30)
    assert (page.status_code, login.status_code) == (200, 401)
    for r in (page, login):
        csp = _csp(r)
        assert csp["default-src"] == "'none'" and "script-src" not in csp, csp
        assert "unsafe-inline" not in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        (style,) = re.findall(r"<style>(.*?)</style>", r.text, re.S)
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert csp["style-src"] == f"'sha256-{digest}'", csp
    api = requests.get(f"{url}/mlops/api/models", headers=bearer(admin), timeout=60)
    assert _csp(api)["default-src"] == "'none'" and api.headers["x-content-type-options"] == "nosniff"


def test_long_paths_and_names_are_404_without_echo(trained):
    url, _ = trained
    admin = bearer(token(url, "admin"))
    long_name = "n" * 20_000
    for path in (f"/mlops/data-docs/churn/{'a' * 300}", f"/mlops/data-docs/churn/{'a' * 300}/index.html",
                 f"/mlops/data-docs/churn/validations/{'b' * 256}.html", f"/mlops/data-docs/churn/{'c/' * 3000}x",
                 f"/mlops/data-docs/{long_name}/index.html", f"/mlops/api/models/{long_name}", f"/mlops/{long_name}"):
        r = requests.get(f"{url}{path}", headers=admin, timeout=30)
        assert r.status_code == 404, (path[:80], r.status_code, r.text[:200])
        assert len(r.content) < 300 and "n" * 100 not in r.text and "a" * 100 not in r.text, r.text[:200]
    short = requests.get(f"{url}/mlops/api/models/nope", headers=admin, timeout=30)
    assert short.status_code == 404 and "nope" in short.json()["detail"]  # a short name is still named
    # Not logged in: the login page links back to the fleet page, not to whatever path was asked for.
    r = requests.get(f"{url}/mlops/data-docs/churn/{long_name}/fleet", timeout=30)
    assert r.status_code == 401 and len(r.content) < 2000 and "n" * 100 not in r.text
