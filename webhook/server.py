"""Run an app factory under gunicorn with the settings of webhook.gunicorn_conf (no config file on disk)."""

from __future__ import annotations

import importlib
import logging

from gunicorn.app.base import BaseApplication

from webhook import jsonlog
from webhook.gunicorn_conf import options

APP_FACTORY = "webhook.app:create_app"


class WebhookServer(BaseApplication):
    def __init__(self, factory: str, settings: dict):
        self.factory = factory
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.settings.items():
            self.cfg.set(key, value)

    def load(self):
        # The app's own log lines (denials, internal errors with tracebacks) as JSON lines on stderr.
        jsonlog.configure(logging.INFO)
        module_name, _, attribute = self.factory.partition(":")
        return getattr(importlib.import_module(module_name), attribute)()


def run(
    bind: str, certfile: str | None = None, keyfile: str | None = None, *, app: str = APP_FACTORY, **overrides
) -> None:
    """Serve the app that `app` ("module:factory") makes, with our gunicorn settings and `overrides`."""
    WebhookServer(app, options(bind, certfile, keyfile, **overrides)).run()
