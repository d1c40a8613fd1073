# The price-suggestion service: the FastAPI app `service.main:app`, run by uvicorn.
#
# Model, one of two ways:
#   mounted at run time (default):
#     docker build -t price-service .
#     docker run -p 8000:8000 -v "$PWD/models/price:/models/price:ro" price-service
#   baked in at build time (a folder under models/; its newest integer version is copied):
#     docker build --build-arg MODEL=price -t price-service:baked .
#     docker run -p 8000:8000 price-service:baked
# Settings are environment variables (MODEL_DIR, LOG_LEVEL, API_KEY, ...), set with
# `docker run -e NAME=value`; the image sets HOST=0.0.0.0 and PORT=8000 (publish the PORT you set).
#
# Build arguments:
#   BASE_IMAGE     any Debian-like image with python3 (3.11) and its venv module
#   MODEL          folder under models/ to bake in (empty: mount the model at run time)
#   MODEL_VERSION  version folder to bake in (empty: the newest integer version)
#   PIP_CERT       CA bundle for pip, for builds behind a TLS-inspecting proxy (empty: none)
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- dependencies: the locked serving requirements (hash-checked) in a virtual environment ------
FROM ${BASE_IMAGE} AS deps
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180
COPY requirements-serve.lock /tmp/requirements-serve.lock
# `python3 -m venv` works both where python3 is /usr/local/bin (python images) and /usr/bin (Debian).
RUN set -eu; \
    if [ -z "${PIP_CERT:-}" ]; then unset PIP_CERT; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --only-binary=:all: --require-virtualenv --require-hashes -r /tmp/requirements-serve.lock; \
    # C++ headers for building custom TensorFlow ops (about 290 MB): serving never compiles.
    rm -rf /opt/venv/lib/python3*/site-packages/tensorflow/include; \
    /opt/venv/bin/python -c "import tensorflow, keras, fastapi, uvicorn, PIL, multipart"

# ---- model: the baked-in model when MODEL is set, else an empty /models ------------------------
FROM ${BASE_IMAGE} AS model
ARG MODEL=
ARG MODEL_VERSION=
# The context holds only what .dockerignore lets through (the serving lock, service/, common/,
# models/), and copying all of it keeps the build working in a clone that has no models/ folder.
COPY . /tmp/context/
RUN set -eu; mkdir -p /models; \
    if [ -n "$MODEL" ]; then \
      src="/tmp/context/models/$MODEL"; \
      [ -d "$src" ] || { echo "MODEL=$MODEL: no folder models/$MODEL in the build context" >&2; exit 1; }; \
      version="${MODEL_VERSION:-$(ls "$src" | grep -E '^[0-9]+$' | sort -n | tail -n 1)}"; \
      [ -n "$version" ] && [ -f "$src/$version/saved_model.pb" ] \
        || { echo "MODEL=$MODEL: no SavedModel version under models/$MODEL (run make train)" >&2; exit 1; }; \
      mkdir -p "/models/$MODEL"; cp -R "$src/$version" "/models/$MODEL/$version"; \
      echo "baked in models/$MODEL/$version"; \
    fi; \
    chmod -R a+rX,go-w /models

# ---- runtime: no compilers, no training code, data or tests; a non-root user -------------------
FROM ${BASE_IMAGE} AS runtime
RUN useradd --uid 10001 --user-group --home-dir /home/app --create-home \
        --shell /usr/sbin/nologin app
COPY --from=deps /opt/venv /opt/venv
# Declared after the venv so that images with and without a baked-in model share those layers.
ARG MODEL=
COPY --from=model /models /models
WORKDIR /app
COPY common/ /app/common/
COPY service/ /app/service/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MODEL_DIR=/models/${MODEL:-price} \
    HOST=0.0.0.0 \
    PORT=8000
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# `python -m service` runs uvicorn on service.main:app with HOST, PORT and LOG_LEVEL from the
# environment; exec form, so it is PID 1 and gets the stop signal itself.
CMD ["python", "-m", "service"]
