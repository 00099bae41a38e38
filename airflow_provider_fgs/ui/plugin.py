"""The Airflow plugin that puts the FunctionGraph view in the UI's navigation (registered by the provider)."""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/functiongraph"


class _AppOnFirstRequest:
    """
    An ASGI app that builds the view's FastAPI app at its first request.

    Every Airflow process loads the plugins, task processes included; importing the API server's modules
    that the view needs costs about a second there, so only the API server, when asked, pays it.
    """

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from airflow_provider_fgs.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class FunctionGraphPlugin(AirflowPlugin):
    """
    The FunctionGraph view: the functions the DAGs call, their recent invocations, their live releases.

    Its page is at ``/functiongraph/`` (in the UI under Browse, as "FunctionGraph"), its JSON under
    ``/functiongraph/api/``; see docs/operating.md.
    """

    name = "functiongraph"
    fastapi_apps = [  # noqa: RUF012  # AirflowPlugin declares these as plain lists
        {"app": _AppOnFirstRequest(), "url_prefix": URL_PREFIX, "name": "FunctionGraph view"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "FunctionGraph",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "functiongraph",
        }
    ]
