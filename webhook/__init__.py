"""tfserving-gitops validating admission webhook (and, in webhook.savedmodel, the SavedModel checks)."""
