# Small image: dependencies are built in one stage, only the virtualenv is copied into the runtime.
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY pyproject.toml README.md LICENSE ./
COPY model ./model
COPY service ./service
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin router \
 && mkdir -p /app /data && chown router:router /data
COPY --from=build /opt/venv /opt/venv
COPY training_data /app/training_data
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TICKET_ROUTER_HOST=0.0.0.0 \
    TICKET_ROUTER_PORT=8000 \
    TICKET_ROUTER_DATA_DIR=/data \
    TICKET_ROUTER_TRAINING_DATA=/app/training_data
USER router
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=5 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
CMD ["ticket-router", "serve"]
