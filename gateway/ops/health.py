"""Liveness and readiness. Ready means: at least one issuer's keys are loaded."""

from django.http import HttpRequest, JsonResponse

from gateway.issuers.registry import registry


async def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    loaded = sorted(issuer for issuer, keys in registry.keys.items() if keys.loaded)
    ready = bool(loaded)
    return JsonResponse({"status": "ready" if ready else "not_ready", "issuers_loaded": loaded},
                        status=200 if ready else 503)
