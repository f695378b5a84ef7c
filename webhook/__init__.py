"""tfserving-gitops validating admission webhook (and, in savedmodel, the SavedModel checks)."""


def __getattr__(name: str):
    # Lazy, so `import savedmodel` (the library) does not pull in Flask.
    if name == "create_app":
        from webhook.app import create_app

        return create_app
    raise AttributeError(f"module 'webhook' has no attribute {name!r}")
