"""An OnlineFeatureStore on Redis: one packed blob per entity, newest-wins writes in Lua."""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from gristmill.core.urls import mask_url
from gristmill.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    DataError,
    MissingExtraError,
)
from gristmill.stores.features import EntityVector, OnlineCapabilities

try:
    import msgpack
    import redis
    from redis import exceptions as redis_errors
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingExtraError(
        "the Redis online store needs redis and msgpack: pip install 'gristmill[redis]'"
    ) from exc

_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]+")
_GLOB = re.compile(r"([*?\[\]\\])")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# The blob of one entity is one msgpack array ``[event_us, expires_us, values]``; its head is
# written with fixed-width int64s so the Lua script can read the event time at byte 3 without
# decoding the rest. ``expires_us`` is 0 when the vector never expires. One blob per entity
# makes a lookup of one entity a single GET, the cheapest read Redis has; msgpack decodes a
# vector of ten floats in under a microsecond (stdlib JSON takes four times as long).
_HEAD = struct.Struct(">BBqBq")
_ARRAY3, _INT64 = 0x93, 0xD3

# Store each vector only if it is newer than the stored one (by event time, strictly: an
# equal one is a replay). ARGV[i] is the blob for KEYS[i]; the expiry (µs, 0 for none) is
# read from it too, and set as the key's own expiry. Comparison and write happen in one
# script, so concurrent writers cannot interleave them.
_PUT = """
local written = 0
for i = 1, #KEYS do
  local blob = ARGV[i]
  local old = redis.call('GET', KEYS[i])
  if not old or struct.unpack('>i8', blob, 3) > struct.unpack('>i8', old, 3) then
    local expires = struct.unpack('>i8', blob, 12)
    if expires == 0 then
      redis.call('SET', KEYS[i], blob)
    else
      local at = math.max(1, math.ceil(expires / 1000))
      redis.call('SET', KEYS[i], blob, 'PXAT', string.format('%.0f', at))
    end
    written = written + 1
  end
end
return written
"""

# Read many entities in one call: the keys are built server-side from the view prefix and the
# entities (one msgpack argument), and the blobs come back as one string — a msgpack array
# once the client prepends its head, a missing key being nil. Against one MGET this saves
# encoding a command argument and parsing a reply per entity, which in redis-py costs more
# than Redis's own work. KEYS[1] is the view prefix: every key of a namespace shares its
# ``{namespace}`` hash slot, so the derived keys live where the declared one does.
_GET = """
local prefix, entities = ARGV[1], cmsgpack.unpack(ARGV[2])
local keys = {}
for i = 1, #entities do keys[i] = prefix .. entities[i] end
local blobs = redis.call('MGET', unpack(keys))
for i = 1, #blobs do if not blobs[i] then blobs[i] = '\\192' end end
return table.concat(blobs)
"""

# Keys per script call: large enough to amortise the call, small enough not to block Redis
# for long (a script runs alone); the calls of one put share one pipeline round trip.
_KEYS_PER_CALL = 500
_ENTITIES_PER_CALL = 1000  # Lua's unpack() takes at most ~8,000 values
_ARRAY32 = struct.Struct(">BI")


class RedisOnlineStore:
    """The online feature store on Redis (≥ 6.2), with the sync redis-py client.

    An entity's vector is the string key ``gristmill:{<namespace>}:online:<view>:<entity>``
    holding one msgpack blob (event time, expiry, values). ``get`` of one entity is one GET;
    of several, one read script (an MGET whose reply is one string); ``put`` is a Lua script
    per 500 vectors, all in one pipeline, that writes a vector only when its event time is
    newer than the stored one. A vector with a TTL also gets a Redis expiry at
    ``event_time + ttl``, so Redis drops expired vectors itself; ``get`` checks the expiry
    too, so a vector is never served late.

    Values must be msgpack scalars (None, bool, int, float, str, bytes) or lists of them.
    The ``{namespace}`` hash tag keeps a namespace's keys in one cluster slot.
    """

    capabilities = OnlineCapabilities(cross_process=True, native_ttl=True)

    def __init__(self, url: str, *, namespace: str) -> None:
        if not _NAMESPACE.fullmatch(namespace):
            raise ConfigError(
                f"Redis online store namespace {namespace!r} is invalid; use letters, digits, '_.-'"
            )
        self.url = url
        self.namespace = namespace
        self._prefix = f"gristmill:{{{namespace}}}:online:"
        self._client: redis.Redis | None = None
        self._put_sha = self._get_sha = ""
        self._views: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RedisOnlineStore({mask_url(self.url)!r}, namespace={self.namespace!r})"

    def __enter__(self) -> RedisOnlineStore:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        if self._client is not None:
            return
        client = redis.Redis.from_url(self.url)
        with self._translated():
            try:
                client.ping()
                self._put_sha = client.script_load(_PUT)
                self._get_sha = client.script_load(_GET)
            except BaseException:
                client.close()
                raise
        self._client = client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def put(self, view: str, vectors: Sequence[EntityVector], *, ttl: float | None = None) -> int:
        """Store the vectors newer than the stored ones; returns how many that was.

        ``ttl`` (seconds) is stamped on each vector: it expires ``ttl`` after its event time.
        """
        if not vectors:
            return 0
        prefix = self._view_prefix(view)
        keys = [prefix + vector.entity for vector in vectors]
        args = _encode(vectors, ttl)
        with self._translated():
            try:
                return self._run_put(keys, args)
            except redis_errors.NoScriptError:
                self._reload_scripts()
                return self._run_put(keys, args)

    def get(
        self, view: str, entities: Sequence[str], *, features: Sequence[str] | None = None
    ) -> list[EntityVector | None]:
        """One result per entity, in order: its vector, or ``None`` (unknown or expired).

        With ``features``, each vector's values hold only those of the features it has.
        """
        if not entities:
            return []
        prefix = self._view_prefix(view)
        client = self._redis
        try:
            if len(entities) == 1:
                blob = client.get(prefix + entities[0])
                found = [None if blob is None else msgpack.unpackb(blob)]
            else:
                found = self._get_many(prefix, entities)
        except redis_errors.NoScriptError:
            self._reload_scripts()
            return self.get(view, entities, features=features)
        except redis_errors.RedisError as exc:
            raise self._translate(exc) from exc
        except (ValueError, TypeError) as exc:
            raise BackendError(
                f"an online value of view {view!r} is not a gristmill vector ({exc}); "
                "were its keys written by something else?"
            ) from exc
        return _vectors(entities, found, features)

    def delete_view(self, view: str) -> None:
        """Delete every vector of ``view`` (a SCAN over this namespace's keys of the view)."""
        pattern = _GLOB.sub(r"\\\1", self._view_prefix(view)) + "*"
        client = self._redis
        with self._translated():
            batch: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.unlink(*batch)
                    batch.clear()
            if batch:
                client.unlink(*batch)

    # -- internals ---------------------------------------------------------------------------

    @property
    def _redis(self) -> redis.Redis:
        if self._client is None:
            raise BackendError(f"{self!r} is not open; call open() first")
        return self._client

    def _get_many(self, prefix: str, entities: Sequence[str]) -> list[Any]:
        client, sha, pack = self._redis, self._get_sha, msgpack.packb
        if len(entities) <= _ENTITIES_PER_CALL:
            replies = [client.evalsha(sha, 1, prefix, prefix, pack(list(entities)))]
        else:
            with client.pipeline(transaction=False) as pipe:
                for start in range(0, len(entities), _ENTITIES_PER_CALL):
                    chunk = list(entities[start : start + _ENTITIES_PER_CALL])
                    pipe.evalsha(sha, 1, prefix, prefix, pack(chunk))
                replies = pipe.execute()
        found: list[Any] = []
        for start, reply in zip(range(0, len(entities), _ENTITIES_PER_CALL), replies, strict=True):
            count = min(_ENTITIES_PER_CALL, len(entities) - start)
            found.extend(msgpack.unpackb(_ARRAY32.pack(0xDD, count) + reply))
        return found

    def _reload_scripts(self) -> None:
        # The server lost its script cache (a restart or SCRIPT FLUSH): load them again.
        self._put_sha = self._redis.script_load(_PUT)
        self._get_sha = self._redis.script_load(_GET)

    def _run_put(self, keys: list[str], args: list[bytes]) -> int:
        client = self._redis
        if len(keys) <= _KEYS_PER_CALL:
            return int(client.evalsha(self._put_sha, len(keys), *keys, *args))
        with client.pipeline(transaction=False) as pipe:
            for start in range(0, len(keys), _KEYS_PER_CALL):
                chunk = keys[start : start + _KEYS_PER_CALL]
                pipe.evalsha(self._put_sha, len(chunk), *chunk, *args[start : start + len(chunk)])
            return sum(int(written) for written in pipe.execute())

    def _view_prefix(self, view: str) -> str:
        prefix = self._views.get(view)
        if prefix is None:
            if not view:
                raise ConfigError("an online feature view needs a non-empty name")
            # ':' separates view and entity; escaping it keeps views like 'a:b' distinct.
            escaped = view.replace("%", "%25").replace(":", "%3A")
            prefix = self._views[view] = f"{self._prefix}{escaped}:"
        return prefix

    def _translate(self, exc: redis_errors.RedisError) -> BackendError:
        if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
            return BackendUnavailableError(
                f"Redis online store cannot reach {mask_url(self.url)}: {exc}; "
                "is the server running?"
            )
        return BackendError(f"Redis online store at {mask_url(self.url)} failed: {exc}")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except redis_errors.RedisError as exc:
            raise self._translate(exc) from exc


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:  # naive times are taken as UTC, as everywhere in gristmill
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def _encode(vectors: Sequence[EntityVector], ttl: float | None) -> list[bytes]:
    """The vectors' blobs: the put script's ARGV."""
    ttl_us = None if ttl is None else round(ttl * 1_000_000)
    head, pack = _HEAD.pack, msgpack.packb
    times: dict[datetime, int] = {}  # vectors of one batch often share their event time
    args: list[bytes] = []
    for vector in vectors:
        event = times.get(vector.event_time)
        if event is None:
            event = times[vector.event_time] = _micros(vector.event_time)
        expires = 0 if ttl_us is None else max(1, event + ttl_us)  # 0 means "never"
        try:
            values = pack(vector.values)
        except (TypeError, ValueError, OverflowError) as exc:
            raise DataError(
                f"the features of entity {vector.entity!r} cannot be stored online: {exc}; "
                "use None, bool, int, float, str or bytes values"
            ) from exc
        args.append(head(_ARRAY3, _INT64, event, _INT64, expires) + values)
    return args


def _vectors(
    entities: Sequence[str], found: list[Any], features: Sequence[str] | None
) -> list[EntityVector | None]:
    """Decoded blobs (``[event_us, expires_us, values]`` or ``None``) as vectors."""
    now = time.time_ns() // 1000
    stamp = datetime.fromtimestamp
    vectors: list[EntityVector | None] = []
    for entity, item in zip(entities, found, strict=True):
        if item is None or (item[1] and item[1] <= now):
            vectors.append(None)
            continue
        event, _, values = item
        if features is not None:
            values = {name: values[name] for name in features if name in values}
        # Exact to the microsecond up to the year 2100 (µs / 1e6 rounds back exactly).
        vectors.append(EntityVector(entity, values, stamp(event / 1e6, UTC)))
    return vectors
