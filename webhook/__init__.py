"""The validating admission webhook for TF Serving Deployments: `webhook.app.create_app` builds the Flask app,
`webhook.server.run` serves it with gunicorn (TLS). Checks live in `webhook.checks`, one module each."""
