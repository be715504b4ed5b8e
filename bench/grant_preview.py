"""The admin's preview of a grant change at scale: 10,000 live sockets, 50,000 known users.

    .venv/bin/python bench/grant_preview.py [--sockets 10000] [--known 50000] [--runs 5]

One Django process, as one gateway process answering the admin, on SQLite in a temporary
folder and Redis (database 14, flushed first). Set up:

- ``--known`` identities with a last-login claims snapshot (``KnownClaims``): 3-8 groups
  out of 300, two roles, scopes, an email and a ``department``; one in ``--every`` is in
  ``sre`` (its group and its department; default: all of them, so the change touches every
  known user);
- ``--sockets`` entries in the Redis roster, as four gateway processes would list them,
  each with a bearer token's claims (about 600 bytes) and one to three channels;
  every socket holds a channel under ``sre.*`` (``sre.oncall`` for one in ten);
- 300 grants (a group each, on ``team-<n>`` channels and patterns) plus
  ``groups=sre -> sre.*`` (``--claim department``: ``department=sre -> sre.*``).

Measured, by ``--change``: the administrator narrows ``sre.*`` to ``sre.oncall`` (``narrow``),
adds ``sre -> sre.svc-1`` with publish (``add``), deletes the ``sre.*`` grant (``delete``),
or deletes it with ``--bulk``-1 team grants through the bulk action (``bulk-delete``). The
whole request that shows the preview is timed (through Django's test client: session,
permission check, form validation, reading grants, roster and known users, the preview, the
template), ``--runs`` times, plus the parts: reading (``gather``), matching (``review``
less reading) and the page size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REDIS_URL = "redis://127.0.0.1:6379/14"  # a database of its own: it is flushed
ISSUER = "https://idp.bench.example"


def configure(folder: Path) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "GATEWAY_SQLITE_PATH": str(folder / "bench.sqlite3"),
        "GATEWAY_REDIS_URL": REDIS_URL,
        # dev mode (DEBUG on: static files without a manifest); it logs the few SQL
        # queries of a preview, which reads its rows with one query per table
    })
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def populate(known: int, sockets: int, rng: random.Random, every: int = 1,
             claim: str = "groups") -> int:
    """Write the identities, grants and roster; return the id of the ``sre.*`` grant."""
    import redis
    from django.utils import timezone

    from gateway.login.known import lines
    from gateway.models import Grant, KnownClaims
    from gateway.ops.roster import CLAIMS_KEY, INFO_KEY, ROSTER_KEY, SocketEntry, matcher_view

    groups = [f"team-{n}" for n in range(300)]
    Grant.objects.bulk_create([Grant(issuer=ISSUER, claim="groups", value=g,
                                     target=f"{g}.*" if n % 2 else g, subscribe=True)
                               for n, g in enumerate(groups)])
    sre = Grant.objects.create(issuer=ISSUER, claim=claim, value="sre", target="sre.*")

    def snapshot(n: int) -> dict[str, object]:
        mine = rng.sample(groups, rng.randint(3, 8)) + (["sre"] if n % every == 0 else [])
        return {"issuer": ISSUER, "subject": f"user-{n}", "sid": f"sid-{n}", "groups": sorted(mine),
                "roles": ["developer", "viewer"], "scopes": ["openid", "profile", "email", "ws"],
                "expires_at": 0.0, "client_id": "gateway", "email": f"user-{n}@bench.example",
                "email_verified": True, "groups_overage": False,
                "department": "sre" if n % every == 0 else f"dept-{n % 20}"}

    now = timezone.now()
    rows = []
    for n in range(known):
        snap = snapshot(n)
        rows.append(KnownClaims(issuer=ISSUER, subject=f"user-{n}", username=f"user-{n}",
                                snapshot=snap, groups=lines(snap["groups"]),  # type: ignore[arg-type]
                                roles=lines(snap["roles"]), seen_at=now))  # type: ignore[arg-type]
    KnownClaims.objects.bulk_create(rows, batch_size=2000)

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    pipe = client.pipeline(transaction=False)
    for n in range(sockets):
        person = n * every % known  # socket holders are in sre
        claims = snapshot(person)
        token = {"iss": ISSUER, "sub": f"user-{person}", "aud": ["urn:bench:api"],
                 "exp": 2e9, "iat": 1.7e9, "jti": f"jti-{n:08d}", "azp": "gateway",
                 "scope": "openid profile email ws", "email": claims["email"],
                 "name": f"User {person}", "preferred_username": f"user-{person}",
                 "groups": claims["groups"], "realm_access": {"roles": ["developer", "viewer"]},
                 "department": claims["department"]}
        channels = ["sre.oncall" if n % 10 == 0 else f"sre.svc-{n % 40}"]
        channels += rng.sample([f"team-{k}" for k in range(0, 300, 2)], rng.randint(0, 2))
        entry = SocketEntry(socket=f"specific.bench!{n:08d}", issuer=ISSUER,
                            subject=f"user-{person}", route="/ws/events/", credential="bearer",
                            process=f"gw-{n % 4}:{1000 + n % 4}", connected_at=time.time(),
                            channels=tuple(sorted(channels)),
                            **matcher_view(claims["groups"], ["developer", "viewer"],  # type: ignore[arg-type]
                                           token))
        pipe.hset(INFO_KEY, entry.socket, entry.to_json())
        pipe.hset(CLAIMS_KEY, entry.socket, entry.claims_json())
        pipe.zadd(ROSTER_KEY, {entry.socket: time.time() + 3600})
    pipe.execute()
    return int(sre.pk)


CHANGES = ("narrow", "add", "delete", "bulk-delete")


def request(client: Any, change: str, grant_id: int, claim: str, bulk: int) -> Any:
    """The admin's request that shows the preview of ``change`` (nothing is saved)."""
    from gateway.models import Grant

    if change in ("narrow", "add"):
        url = (f"/admin/gateway/grant/{grant_id}/change/" if change == "narrow"
               else "/admin/gateway/grant/add/")
        return client.post(url, {"issuer": ISSUER, "claim": claim, "value": "sre",
                                 "target": "sre.oncall" if change == "narrow" else "sre.svc-1",
                                 "subscribe": "on", "publish": "on" if change == "add" else "",
                                 "note": "", "_save": "Save"})
    if change == "delete":
        return client.get(f"/admin/gateway/grant/{grant_id}/delete/")
    others = list(Grant.objects.exclude(pk=grant_id).order_by("pk")
                  .values_list("pk", flat=True)[:bulk - 1])
    return client.post("/admin/gateway/grant/", {"action": "delete_selected",
                                                 "_selected_action": [grant_id, *others]})


def staged_for(change: str, grant_id: int, claim: str, bulk: int) -> Any:
    """The same change, staged as the admin stages it (to time reading and matching apart)."""
    from gateway.models import Grant
    from gateway.oversight.preview import stage_delete, stage_save

    before = Grant.objects.get(pk=grant_id)
    if change == "narrow":
        after = Grant.objects.get(pk=grant_id)
        after.target = "sre.oncall"
        return stage_save(before, after)
    if change == "add":
        return stage_save(None, Grant(issuer=ISSUER, claim=claim, value="sre", target="sre.svc-1",
                                      subscribe=True, publish=True))
    if change == "delete":
        return stage_delete([before])
    others = Grant.objects.exclude(pk=grant_id).order_by("pk")[:bulk - 1]
    return stage_delete([before, *others])


def measure(grant_id: int, runs: int, claim: str = "groups", change: str = "narrow",
            bulk: int = 20) -> dict[str, object]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from gateway.oversight.preview import collector_paused, gather, review

    admin = get_user_model().objects.create_superuser("bench-admin")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(admin)
    requests, cpus, reads, matches = [], [], [], []
    size = 0
    for _ in range(runs):
        started, cpu = time.perf_counter(), time.process_time()
        answer = request(client, change, grant_id, claim, bulk)
        requests.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        if answer.status_code != 200 or b"grant-preview" not in answer.content:
            raise SystemExit(f"no preview: {answer.status_code}")
        size = len(answer.content)
        staged = staged_for(change, grant_id, claim, bulk)
        started = time.perf_counter()
        with collector_paused():
            world = gather(staged)
        read = time.perf_counter()
        found = review(staged, world)
        done = time.perf_counter()
        reads.append((read - started) * 1000)
        matches.append((done - read) * 1000)
    return {"request_ms": [round(x) for x in requests], "request_cpu_ms": [round(x) for x in cpus],
            "read_ms": [round(x) for x in reads],
            "match_ms": [round(x) for x in matches], "page_kib": round(size / 1024),
            "revoked": found.revoked_sockets, "gaining": found.gaining, "losing": found.losing,
            "offline": found.offline.total, "known": found.known_users,
            "sockets": found.sockets_checked,
            "median_request_ms": round(statistics.median(requests)),
            "median_request_cpu_ms": round(statistics.median(cpus)),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--known", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--claim", default="groups",
                        help="the claim path of the sre grant; any other than groups or roles "
                             "makes the preview read every login snapshot and socket's claims")
    parser.add_argument("--every", type=int, default=1,
                        help="one known user in EVERY is in sre (1: all of them)")
    parser.add_argument("--change", choices=CHANGES, default="narrow",
                        help="narrow the sre grant to sre.oncall (edit), add sre -> sre.svc-1 "
                             "with publish, delete the sre grant, or bulk-delete it with others")
    parser.add_argument("--bulk", type=int, default=20,
                        help="grants the bulk delete selects: the sre grant and BULK-1 team grants")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        configure(Path(folder))
        started = time.perf_counter()
        grant_id = populate(args.known, args.sockets, random.Random(22), args.every, args.claim)
        print(f"setup {time.perf_counter() - started:.1f} s", file=sys.stderr)
        print(json.dumps({"sockets": args.sockets, "known": args.known, "every": args.every,
                          "claim": args.claim, "change": args.change,
                          **measure(grant_id, args.runs, args.claim, args.change, args.bulk)}))


if __name__ == "__main__":
    main()
