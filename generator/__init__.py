"""tfserving-gitops generator: models.yaml catalogue → Kustomize overlays and Argo CD Applications."""
