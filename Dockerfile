# The gateway image: python:3.11-slim, the locked dependencies in /app/.venv, and the
# production launch command (scripts/serve: migrations check, collectstatic, ASGI workers).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_BIND=0.0.0.0:8000

WORKDIR /app

# Dependencies first, so code changes do not reinstall them. requirements.lock is the runtime
# lock only: no test, lint or benchmark tools in the image (those are in requirements-dev.lock).
COPY requirements.lock ./
RUN python -m venv .venv && .venv/bin/python -m pip install -q -r requirements.lock

COPY . .
RUN useradd --system --uid 10001 --home-dir /app gateway \
    && mkdir -p var/static \
    && chown -R gateway var
USER gateway

EXPOSE 8000
CMD ["scripts/serve"]
