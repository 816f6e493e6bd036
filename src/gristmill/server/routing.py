"""Which loaded version answers a request that names a model alone: its traffic policy.

A ``Route`` is a model's ``TrafficPolicy`` with its versions already loaded (a version
that could not be loaded is ``None`` there, so the chain skips it). ``Route.choose``
picks the version per request:

* **canary**: a share ``canary_share`` of requests goes to the canary. With a key (the
  ``x-gristmill-key`` header, else the native API's first entity) the pick is sticky: the
  key's hash (BLAKE2b of ``model`` and key, as a number in [0, 1)) below the share goes to
  the canary, so a key always reaches the same version, on every process and machine, and
  a key in the canary at 10 % stays in it when the share grows to 20 %. Without a key,
  a random draw per request.
* **fallback**: the versions that answer, in order, when the chosen one raises (not a 4xx:
  the client's input error is its own) or is not loaded. A canary falls back to the
  primary first, then to the policy's ``fallback`` versions.
* **shadow**: versions scored beside the answer, off the request path (``ShadowScorer``).

Nothing here reads a store: ``RegistryModels`` builds routes (loading first, switching after).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from starlette.requests import Request

from gristmill.servables.port import Servable
from gristmill.server.budget import FALLBACK_HEADER, request_budget
from gristmill.server.headers import header
from gristmill.server.http import NotReadyError
from gristmill.server.port import Served
from gristmill.stores.models import TrafficPolicy

KEY_HEADER = "x-gristmill-key"
"""The request header whose value makes a canary pick sticky (any protocol)."""

VERSION_HEADER = "x-gristmill-model-version"
"""The answer header naming the version that answered (every protocol; MLflow's body
has no place for it)."""

_SCALE = float(1 << 64)


def request_key(request: Request, payload: object = None) -> str | None:
    """The key that makes a canary pick sticky: the ``x-gristmill-key`` header, else the
    first entity of a native body's ``entities``; ``None`` (a random pick) without either."""
    given = header(request, KEY_HEADER)
    if given:
        return given
    if isinstance(payload, dict):
        entities = payload.get("entities")
        if isinstance(entities, list) and entities and isinstance(entities[0], str | int):
            return str(entities[0])
    return None


def with_budget(served: Served, request: Request, default_ms: float | None) -> Served:
    """``served`` with the request's latency budget: its header, else the version's spec's
    (``Served.model_budget_ms``), else ``default_ms`` (the server's setting)."""
    served.budget = request_budget(request, served.model_budget_ms or default_ms)
    return served


def answer_headers(served: Served, request_id: str) -> dict[str, str]:
    """The headers of a prediction's answer: its request id, the version that answered,
    and ``x-gristmill-fallback: true`` when that is not the version the request reached."""
    headers = {"x-request-id": request_id, VERSION_HEADER: str(served.answering.version)}
    if served.fell_back:
        headers[FALLBACK_HEADER] = "true"
    return headers


def key_share(model: str, key: str) -> float:
    """Where ``key`` falls in [0, 1) for ``model``: the same on every process and run."""
    digest = hashlib.blake2b(f"{model}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


@dataclass(frozen=True)
class Route:
    """A model's policy with its versions loaded (``None``: could not be loaded)."""

    policy: TrafficPolicy
    primary: Servable | None
    canary: Servable | None
    shadows: tuple[Servable, ...]
    fallbacks: tuple[Servable | None, ...]

    @property
    def revision(self) -> int:
        return self.policy.revision

    def complete(self) -> bool:
        """Every version the policy names is loaded."""
        held = [self.primary, *self.fallbacks]
        if self.policy.canary is not None:
            held.append(self.canary)
        return all(s is not None for s in held) and len(self.shadows) == len(self.policy.shadow)

    def choose(self, key: str | None) -> tuple[Servable, tuple[Servable, ...], int | None]:
        """``(chosen, fallbacks in order, missing)`` for one request; ``missing`` is the
        version the policy picked when it is not loaded (``chosen`` is then the first
        loaded fallback), else ``None``. ``NotReadyError`` (503) when no version of the
        chain is loaded."""
        policy = self.policy
        to_canary = False
        if policy.canary is not None and policy.canary_share > 0:
            draw = random.random() if key is None else key_share(policy.model, key)
            to_canary = draw < policy.canary_share
        picked = self.canary if to_canary else self.primary
        chain = [self.primary] if to_canary else []
        chain += list(self.fallbacks)
        seen = {id(picked)}
        rest: list[Servable] = []
        for servable in chain:
            if servable is not None and id(servable) not in seen:
                seen.add(id(servable))
                rest.append(servable)
        if picked is not None:
            return picked, tuple(rest), None
        number = policy.canary if to_canary and policy.canary is not None else policy.primary
        if not rest:
            raise NotReadyError(
                f"no version of {policy.model}'s traffic policy (revision {policy.revision}: "
                f"versions {', '.join(map(str, policy.versions()))}) could be loaded; see the "
                "server's log, or name a version (NAME/N)"
            )
        return rest[0], tuple(rest[1:]), number
