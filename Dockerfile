# khook-forwarder: the in-cluster watcher that publishes Kubernetes Events to Pub/Sub.
# Build from the repository root:  docker build -t khook-forwarder .
# Two stages, so the runtime image carries no pip cache, wheels or build tools.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY khook_core ./khook_core
RUN python -m pip install --no-cache-dir --prefix=/install ".[forwarder]" \
 && python -m compileall -q /install

FROM python:3.11-slim
LABEL org.opencontainers.image.title="khook-forwarder" \
      org.opencontainers.image.description="Kubernetes Events to Pub/Sub for khook serverless" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /install /usr/local
# The same mapping table and plugin settings the functions bundle, so the pre-filter and the
# functions agree; mount a ConfigMap over /etc/khook to change them without a rebuild.
COPY config/event-mappings.yaml config/plugins.yaml /etc/khook/
RUN groupadd --system --gid 10001 khook \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin khook
ENV KHOOK_CONFIG_DIR=/etc/khook \
    KHOOK_FORWARDER_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Numeric, so runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["khook-forwarder"]
