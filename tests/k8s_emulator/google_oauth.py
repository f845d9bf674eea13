"""Google's OAuth 2.0 token endpoint, emulated: it exchanges a service account's signed JWT assertion for
an access token, as https://oauth2.googleapis.com/token does, after checking the signature against the
service account's public key. A service-account key file whose `token_uri` points here makes google-auth
(and so Airflow's Google hooks) obtain real bearer tokens offline; `on_issue` lets the emulated API
server accept exactly those tokens.

    with GoogleTokenServer(on_issue=cluster.accept_token) as oauth:
        key_file.write_text(json.dumps(oauth.service_account_key("trainer@project.iam.gserviceaccount.com")))
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # google-auth signs for this, whatever token_uri says


class GoogleTokenServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, on_issue=None):
        super().__init__(("127.0.0.1", 0), _Handler)
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()).decode()
        self.on_issue = on_issue
        self.issued: list[dict] = []  # {"token", "sub"/"iss", "scope"}
        self._ids = itertools.count(1)

    @property
    def token_uri(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/token"

    def service_account_key(self, email: str, project: str = "emulated-project") -> dict:
        return {"type": "service_account", "project_id": project, "private_key_id": "emulated-key-1",
                "private_key": self.private_pem, "client_email": email, "client_id": "1",
                "token_uri": self.token_uri}

    def __enter__(self) -> "GoogleTokenServer":
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                         name="google-oauth-emulator").start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()

    def exchange(self, form: dict[str, str]) -> tuple[int, dict]:
        import jwt

        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(form.get("assertion", ""), self._key.public_key(), algorithms=["RS256"],
                                audience=GOOGLE_TOKEN_AUDIENCE)
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": f"bad assertion: {exc}"}
        token = f"ya29.emulated-{next(self._ids)}"
        self.issued.append({"token": token, "iss": claims.get("iss"), "scope": claims.get("scope")})
        if self.on_issue:
            self.on_issue(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}


class _Handler(BaseHTTPRequestHandler):
    server: GoogleTokenServer

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        code, body = (self.server.exchange(form) if self.path.split("?")[0] == "/token"
                      else (404, {"error": "not_found"}))
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
