"""The service's app plus a trivial POST endpoint, for the HTTP benchmark's baseline.

``/bench/echo`` decodes the same ``ClassifyRequest`` body as ``/v1/classify`` and returns a
constant, so the two differ only by the decision (and its recording).
"""

from __future__ import annotations

from litestar import Litestar, post

from service.app import create_app
from service.lifeline import die_with_parent, parent_from_environment
from service.schemas import ClassifyRequest
from service.settings import Settings


@post("/bench/echo", status_code=200)
async def echo(data: ClassifyRequest) -> dict[str, str]:
    """Decode the ticket, decide nothing."""
    return {"status": "ok"}


def app() -> Litestar:
    """The benchmarked app: the real one, with the trivial endpoint added."""
    parent = parent_from_environment()
    if parent is not None:
        die_with_parent(parent)
    application = create_app(Settings.from_env())
    application.register(echo)
    return application
