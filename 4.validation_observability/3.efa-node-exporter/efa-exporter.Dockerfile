# EFA exporter image: the one-file exporter and its pinned client library. Mount the host's sysfs
# read-only at /host/sys (the DaemonSet in kubernetes/ does). Build: make container.
# ARG defaults come from 2.ami_and_containers/versions.yaml (a test fails when they differ).
ARG PYTHON_SLIM_IMAGE=python:3.11.14-slim-bookworm
FROM ${PYTHON_SLIM_IMAGE}

ARG PROMETHEUS_CLIENT_VERSION=0.26.0

ENV PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir "prometheus-client==${PROMETHEUS_CLIENT_VERSION}"

WORKDIR /app
COPY efa_exporter.py ./

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG PYTHON_SLIM_IMAGE, pinned in versions.yaml (a test rejects latest)
USER 65534:65534
EXPOSE 9109
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9109/metrics', timeout=4)"]
ENTRYPOINT ["python", "/app/efa_exporter.py"]
CMD ["--listen-address", "0.0.0.0", "--port", "9109", "--sysfs-root", "/host/sys"]
