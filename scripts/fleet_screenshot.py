"""Screenshot of the fleet page over the local state (run `make demo` first) for the README.

    make demo && .venv/bin/python scripts/fleet_screenshot.py docs/fleet.png

Starts Airflow's API server on a free loopback port with the Makefile's environment and a one-off user,
logs in with headless Chromium (Debian's chromium + chromedriver) like a person, saves the page, stops.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = secrets.token_urlsafe(12)
    tmp = Path(tempfile.mkdtemp(prefix="fleet-shot-"))
    (tmp / "passwords.json").write_text(json.dumps({"admin": password}))
    local = ROOT / ".local"
    env = {**os.environ, "MLOPS_HOME": str(local), "AIRFLOW_HOME": str(local / "airflow"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(local / "airflow" / "plugins"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{local / 'airflow' / 'airflow.db'}",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp / "passwords.json"),
           "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False", "SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "true",
           "MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false"}
    server = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--port", str(port), "--workers", "1"],
                              env=env, stdout=(tmp / "api.log").open("wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1500,1100"):
        options.add_argument(arg)
    driver = None
    try:
        deadline = time.time() + 120
        while True:
            try:
                if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the API server did not start; see {tmp / 'api.log'}")
            time.sleep(0.5)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.get(f"{url}/mlops/fleet")
        driver.find_element(By.PARTIAL_LINK_TEXT, "Log in").click()
        wait = WebDriverWait(driver, 60)
        username = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "input[type=text], input[name=username]"))
        username.send_keys("admin")
        driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(password + Keys.ENTER)
        wait.until(lambda d: any(c["name"] == "_token" for c in d.get_cookies()))
        driver.get(f"{url}/mlops/fleet")
        wait.until(lambda d: "Model fleet" in d.find_element(By.TAG_NAME, "body").text)
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
        print(f"saved {out}")
    finally:
        if driver is not None:
            driver.quit()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/fleet.png"))
