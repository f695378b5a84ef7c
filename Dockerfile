# The admission webhook's image: `tfs-gitops webhook serve` over TLS on 8443, as a non-root numeric user.
# Build: docker build -t ghcr.io/tfserving-gitops/webhook:$(version in pyproject.toml) .  (the kind e2e workflow
# builds it too). The same image runs the model sync sidecar (`tfs-gitops sync`).
# Pin the base by digest in production (python:3.11-slim@sha256:...); the tag keeps this file readable.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tfs_gitops ./tfs_gitops
COPY rulebook ./rulebook
COPY generator ./generator
COPY savedmodel ./savedmodel
COPY webhook ./webhook
# A non-editable install into a venv: the runtime dependencies and the webhook extra, not what only CI needs
# (the `validate` extra); byte-compiled here because the root filesystem is read-only at run time.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install '.[webhook]' && /opt/venv/bin/tfs-gitops --version

FROM python:3.11-slim
LABEL org.opencontainers.image.title="tfserving-gitops admission webhook" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
COPY --from=build /opt/venv /opt/venv
# 65532: the conventional "nonroot" uid/gid; numeric so Kubernetes can verify runAsNonRoot.
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["tfs-gitops"]
CMD ["webhook", "serve", "--bind", "0.0.0.0:8443", "--certfile", "/tls/tls.crt", "--keyfile", "/tls/tls.key"]
