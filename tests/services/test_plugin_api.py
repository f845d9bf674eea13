"""The platform plugin's fleet app at /mlops, served by the real API server: only Airflow's own tokens
get in."""

import time

import jwt
import pytest
import requests

from services_session import SERVICE_MODELS

pytestmark = pytest.mark.services


def test_fleet_api_needs_a_token_signed_by_the_deployment(airflow):
    models = f"{airflow.url}/mlops/api/models"
    anonymous = requests.get(models, timeout=30)
    assert anonymous.status_code == 401, anonymous.text

    token = airflow.token()
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "exp": int(time.time()) + 3600}, "not-the-deployment-secret-" * 3,
                        algorithm=jwt.get_unverified_header(token)["alg"])
    refused = requests.get(models, headers={"Authorization": f"Bearer {forged}"}, timeout=30)
    assert refused.status_code == 401, refused.text

    answer = requests.get(models, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    names = {m["model"] for m in answer.json()["models"]}
    assert names == set(SERVICE_MODELS), answer.json()

    page = requests.get(f"{airflow.url}/mlops/fleet", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert page.status_code == 200 and "churn_backfill" in page.text
    assert requests.get(f"{airflow.url}/mlops/fleet", timeout=30).status_code == 401
