"""The FastAPI and Flask apps the logs tests serve (uvicorn, gunicorn): each answers the statuses a SIEM
cares about, runs a monitored call that fails with a canary in its message, and names its principal."""

from typing import Any, NoReturn

import llmobs

CANARY = "c4n4ry-s3cr3t"
"""Must never appear in an exported record: it rides in query strings, bodies, headers and messages."""
PRINCIPAL_KEY = "k" * 32


def principal_of_scope(scope: dict[str, Any]) -> str | None:
    users = [value.decode() for name, value in scope["headers"] if name == b"x-user"]
    return users[0] if users else None


def principal_of_environ(environ: dict[str, Any]) -> str | None:
    user = environ.get("HTTP_X_USER")
    return user if isinstance(user, str) else None


@llmobs.monitor_inference(model="test-model", operation="chat")
def generate(prompt: str) -> NoReturn:
    raise ValueError(f"the model choked on {prompt!r}")


ROUTES = {"/health": "GET", "/ok": "GET", "/admin": "GET", "/limited": "GET", "/upload": "POST", "/boom": "POST"}


def status(path: str, authorized: bool, body: str) -> int:
    """What each route answers; /boom runs the failing monitored call (a 500)."""
    if path == "/boom":
        generate(CANARY + body)
    if path == "/admin":
        return 403 if authorized else 401
    return {"/limited": 429, "/upload": 413}.get(path, 200)


def fastapi_app() -> Any:
    from fastapi import FastAPI, Request, Response

    app = FastAPI()
    llmobs.instrument_fastapi(app, principal=principal_of_scope, client_address=True)

    async def answer(request: Request) -> Response:
        body = (await request.body()).decode()
        return Response(status_code=status(request.url.path, "authorization" in request.headers, body))

    for path, method in ROUTES.items():
        app.add_api_route(path, answer, methods=[method])
    return app


def flask_app() -> Any:
    from flask import Flask, request

    app = Flask(__name__)
    llmobs.instrument_flask(app, principal=principal_of_environ, client_address=True)

    def answer() -> tuple[str, int]:
        return "", status(request.path, "Authorization" in request.headers, request.get_data(as_text=True))

    for path, method in ROUTES.items():
        app.add_url_rule(path, path, answer, methods=[method])
    return app
