"""Run Apache Superset from .venv-bi on 127.0.0.1 and talk to it through its REST API.

Superset keeps its metadata (users, databases, datasets, charts) in a SQLite file in a
temporary folder, and is set up the way its documentation says: `superset db upgrade`,
`superset fab create-admin`, `superset init` (run in one Python process through Flask's
CLI runner: each `superset` command would spend its first 15-40 s importing Superset),
then served by gunicorn, as in production.
The client logs in through /api/v1/security/login and sends the bearer token and, for
every write, the CSRF token (Superset's CSRF protection stays on).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ADMIN = {"username": "admin", "password": secrets.token_hex(12)}

CONFIG = """\
# Written by tests/bi for one test session.
SECRET_KEY = {secret!r}
SQLALCHEMY_DATABASE_URI = {metadata_uri!r}
# No cache anywhere: each chart request must read the file.
CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
DATA_CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
"""

# The `superset` commands of the setup, in one process; prints a JSON line per command.
BOOTSTRAP = """\
import json, sys, time, traceback
from superset.app import create_app
from superset.cli.main import superset

app = create_app()
runner = app.test_cli_runner()
for step, args in json.loads(sys.argv[1]):
    started = time.monotonic()
    result = runner.invoke(superset, args)
    print(result.output, flush=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        traceback.print_exception(result.exception)
    print(json.dumps({"step": step, "exit": result.exit_code,
                      "seconds": time.monotonic() - started}), flush=True)
    if result.exit_code != 0:
        sys.exit(f"superset {' '.join(args[:2])} failed")
"""


class SupersetError(AssertionError):
    pass


class Superset:
    """One Superset installation in `home`, run from the virtual environment `venv`."""

    def __init__(self, venv: Path, home: Path):
        self.venv = Path(venv).resolve()
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.config = self.home / "superset_config.py"
        self.log = self.home / "superset.log"
        self.server: subprocess.Popen | None = None
        self.port: int | None = None
        self.seconds: dict[str, float] = {}

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "SUPERSET_CONFIG_PATH": str(self.config),
            "SUPERSET_HOME": str(self.home),
            "FLASK_APP": "superset",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def bootstrap(self) -> None:
        """Configuration, metadata database, admin user, roles and permissions."""
        if not (self.venv / "bin" / "superset").exists():
            raise SupersetError(
                f"No Superset in {self.venv}: run the tests with `make test-bi`, which "
                "installs it (tests/bi/requirements.in)."
            )
        self.config.write_text(CONFIG.format(
            secret=secrets.token_hex(32),
            metadata_uri=f"sqlite:///{self.home.resolve() / 'superset.db'}",
        ))
        steps = [
            ["db upgrade", ["db", "upgrade"]],
            ["create-admin", ["fab", "create-admin", "--username", ADMIN["username"],
                              "--password", ADMIN["password"], "--firstname", "xsell",
                              "--lastname", "tests", "--email", "admin@xsell.invalid"]],
            ["init", ["init"]],
        ]
        started = time.monotonic()
        with open(self.log, "a") as log:
            log.write("\n$ superset db upgrade; superset fab create-admin; superset init\n")
            log.flush()
            done = subprocess.run(
                [str(self.venv / "bin" / "python"), "-c", BOOTSTRAP, json.dumps(steps)],
                env=self.env, stdout=subprocess.PIPE, stderr=log, text=True, check=False,
                timeout=1200,
            )
            log.write(done.stdout)
        for line in done.stdout.splitlines():
            if line.startswith('{"step"'):
                record = json.loads(line)
                self.seconds[record["step"]] = record["seconds"]
        self.seconds["setup (one process)"] = time.monotonic() - started
        if done.returncode != 0:
            raise SupersetError(f"Superset's setup failed ({done.returncode}):\n{self.tail()}")

    def start(self, timeout: float = 180) -> str:
        """Serve Superset with gunicorn on a free port of 127.0.0.1; returns its URL."""
        self.port = free_port()
        log = open(self.log, "a")  # noqa: SIM115 - stays open for the server's life
        log.write(f"\n$ gunicorn on 127.0.0.1:{self.port}\n")
        log.flush()
        started = time.monotonic()
        self.server = subprocess.Popen(
            [str(self.venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--worker-class", "gthread", "--threads", "4",
             "--timeout", "300", "--no-control-socket",  # else a socket in ~/.gunicorn
             "superset.app:create_app()"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.home,
        )
        log.close()
        url = f"http://127.0.0.1:{self.port}"
        while time.monotonic() - started < timeout:
            if self.server.poll() is not None:
                raise SupersetError(f"Superset stopped ({self.server.returncode}):\n"
                                    f"{self.tail()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        self.seconds["start"] = time.monotonic() - started
                        return url
            except OSError:
                pass
            time.sleep(0.5)
        raise SupersetError(f"Superset did not answer on {url} in {timeout:.0f} s:\n"
                            f"{self.tail()}")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=30)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """Superset's REST API as an admin: JSON in, JSON out; raises on an HTTP error."""

    def __init__(self, url: str):
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        login = self.request("POST", "/api/v1/security/login",
                             {**ADMIN, "provider": "db", "refresh": False}, csrf=False)
        self.headers = {"Authorization": f"Bearer {login['access_token']}"}
        self.csrf = self.request("GET", "/api/v1/security/csrf_token/")["result"]

    def request(self, method: str, path: str, body: dict | None = None, *,
                csrf: bool = True, timeout: float = 120) -> dict:
        headers = {"Accept": "application/json", **getattr(self, "headers", {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if method != "GET" and csrf:
            headers["X-CSRFToken"] = self.csrf
            headers["Referer"] = self.url
        request = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers,
                                         method=method)
        try:
            with self.opener.open(request, timeout=timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            raise SupersetError(f"{method} {path}: HTTP {error.code}: "
                                f"{error.read()[:2000].decode(errors='replace')}") from None

    def get(self, path: str, **kwargs) -> dict:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: dict, **kwargs) -> dict:
        return self.request("POST", path, body, **kwargs)
