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


def fastapi_app() -> Any:
    from fastapi import FastAPI, Header, HTTPException, Request

    app = FastAPI()
    llmobs.instrument_fastapi(app, principal=principal_of_scope, client_address=True)

    @app.get("/health")
    async def health() -> str:
        return "ok"

    @app.get("/ok")
    async def ok() -> str:
        return "ok"

    @app.post("/boom")
    async def boom(request: Request) -> None:
        generate(CANARY + (await request.body()).decode())

    @app.get("/admin")
    async def admin(authorization: str | None = Header(None)) -> None:
        raise HTTPException(401 if authorization is None else 403)

    @app.get("/limited")
    async def limited() -> None:
        raise HTTPException(429)

    @app.post("/upload")
    async def upload() -> None:
        raise HTTPException(413)

    return app


def flask_app() -> Any:
    from flask import Flask, abort, request

    app = Flask(__name__)
    llmobs.instrument_flask(app, principal=principal_of_environ, client_address=True)

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.get("/ok")
    def ok() -> str:
        return "ok"

    @app.post("/boom")
    def boom() -> NoReturn:
        generate(CANARY + request.get_data(as_text=True))

    @app.get("/admin")
    def admin() -> NoReturn:
        abort(401 if "Authorization" not in request.headers else 403)

    @app.get("/limited")
    def limited() -> NoReturn:
        abort(429)

    @app.post("/upload")
    def upload() -> NoReturn:
        abort(413)

    return app
