"""The benchmark baseline: the webhook's HTTP path (JSON parse, AdmissionReview response) allowing everything,
served with the same gunicorn settings (`webhook.server.run(app="devtools.allowall:create_app")`)."""

from __future__ import annotations

import threading

from flask import Flask, jsonify, request

from webhook.admission import Decision, parse_review, review_response
from webhook.app import init_health
from webhook.config import WebhookConfig


def create_app() -> Flask:
    """The benchmark baseline: the same HTTP path (JSON parse and response) that allows everything."""
    app = Flask("webhook-allow-all")
    app.config["MAX_CONTENT_LENGTH"] = WebhookConfig().max_body_bytes

    @app.post("/validate")
    def validate():
        request_uid = parse_review(request.get_data(cache=False)).uid
        return jsonify(review_response(request_uid, Decision(True)))

    app.extensions["tfs_webhook"] = {"ready": threading.Event()}
    app.extensions["tfs_webhook"]["ready"].set()
    init_health(app)
    return app
