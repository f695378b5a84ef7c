"""What a change of the catalogue does, for a pull request's reviewers (`tfs-gitops diff`).

gitsource reads the base catalogue from git; compose loads and renders both sides; semantic compares them as
catalogues (models added, removed, enabled, disabled, settings changed), objects as the Kubernetes objects
Argo CD applies (building only what changed); verification picks what to check in S3 (savedmodel.batch runs
the checks) and turns the reports into preview data; reporters render text, Markdown and JSON. Nothing here
prints; only gitsource and the kubectl builds (generator.validation) leave the process.
"""
