"""An OnlineFeatureStore on Redis: one packed blob per entity, newest-wins writes in Lua."""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from gristmill.core.urls import mask_url
from gristmill.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    DataError,
    MissingExtraError,
)
from gristmill.stores.features import (
    EXPIRED_KEPT_AT_MOST,
    EntityVector,
    OnlineCapabilities,
    VectorLookup,
    unnamed_origin,
)

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

# The blob of one vector is one msgpack array ``[event_time, expires_us, keep_us, newer_us,
# written_at, origin, names, values]``: the event time as a msgpack timestamp (its 96-bit
# form), which msgpack's C code turns into a UTC datetime in about a quarter of the time
# Python takes to build one; ``expires_us`` 0 when the vector never expires, ``keep_us`` the
# key's Redis expiry (one more TTL, at most a day, after ``expires_us``, so an expired vector
# reads "expired" for a while before it reads "missing"); ``newer_us`` the event time of a
# newer vector another pipeline wrote for the entity (0: none), set by the put script;
# ``written_at`` a timestamp; ``origin`` the msgpack-packed ``[feature_set_id, pipeline]``
# and ``names`` the packed feature names, each one bin decoded once per get rather than once
# per entity (ten short strings cost msgpack more than the rest of a vector); and ``values``
# the values in that order. The head is fixed-width so the Lua scripts read the event time
# at byte 5, the expiry at 27 and the newer time at 36 without decoding the rest. One blob
# per entity makes a lookup of one entity a single GET, the cheapest read Redis has.
_HEAD = struct.Struct(">BBBbIqBqBqBqBBbIq")
_ARRAY8, _EXT8, _INT64 = 0x98, 0xC7, 0xD3
_TIMESTAMP_SIZE, _TIMESTAMP_TYPE = 12, -1

# Store each vector only if it is newer than the stored one of its pipeline (by event time,
# strictly: an equal one is a replay). KEYS[i] is a vector key of one pipeline and
# ARGV[3 + i] its blob; ARGV[1] is the view's set of pipelines, ARGV[2] the view's key prefix
# and ARGV[3] this pipeline's key segment. When the view has other pipelines, each vector
# written is compared with theirs for the same entity: the older side records the newer
# side's event time (``newer_us``), which is how a lookup knows it is superseded. Comparison
# and writes happen in one script, so concurrent writers cannot interleave them. A stored
# blob of another layout (an earlier gristmill's) cannot be read back, so any vector
# replaces it. Every key touched shares the namespace's ``{namespace}`` hash slot.
_PUT = """
local set, prefix, mine = ARGV[1], ARGV[2], ARGV[3]
redis.call('SADD', set, mine)
local others = {}
for _, p in ipairs(redis.call('SMEMBERS', set)) do
  if p ~= mine then others[#others + 1] = p end
end
local function micros(blob)
  local nsec, sec = struct.unpack('>I4i8', blob, 5)
  return sec * 1000000 + math.floor(nsec / 1000)
end
local function marked(blob, newer)
  return string.sub(blob, 1, 35) .. struct.pack('>i8', newer) .. string.sub(blob, 44)
end
local function settle(blob, entity)
  local event, mark = micros(blob), 0
  for _, p in ipairs(others) do
    local key = prefix .. p .. ':' .. entity
    local other = redis.call('GET', key)
    if other and string.byte(other, 1) == 0x98 then
      local at = micros(other)
      if at > event then
        mark = math.max(mark, at)
      elseif at < event and struct.unpack('>i8', other, 36) < event then
        redis.call('SET', key, marked(other, event), 'KEEPTTL')
      end
    end
  end
  if mark > 0 then return marked(blob, mark) end
  return blob
end
local skip = #prefix + #mine + 2
local written = 0
for i = 1, #KEYS do
  local blob = ARGV[3 + i]
  local old = redis.call('GET', KEYS[i])
  local newer = not old or string.byte(old, 1) ~= 0x98
  if not newer then
    local nsec, sec = struct.unpack('>I4i8', blob, 5)
    local old_nsec, old_sec = struct.unpack('>I4i8', old, 5)
    newer = sec > old_sec or (sec == old_sec and nsec > old_nsec)
  end
  if newer then
    if #others > 0 then blob = settle(blob, string.sub(KEYS[i], skip)) end
    local keep = struct.unpack('>i8', blob, 27)
    if keep == 0 then
      redis.call('SET', KEYS[i], blob)
    else
      local at = math.max(1, math.ceil(keep / 1000))
      redis.call('SET', KEYS[i], blob, 'PXAT', string.format('%.0f', at))
    end
    written = written + 1
  end
end
return written
"""

# Read many entities in one call: the keys come as one msgpack argument and the blobs go back
# as a few strings — joined, a msgpack array once the client prepends its head, a missing key
# being nil. Against one MGET this saves encoding a command argument and parsing a reply per
# entity, which in redis-py costs more than Redis's own work. Lua strings are dear (each is
# hashed, interned and later collected), so the script makes as few as it can: the client
# builds the keys, and the blobs are joined in pieces of at most 8,000 bytes, as Lua's
# table.concat is linear only up to its 8 KiB buffer and builds intermediate strings beyond.
# KEYS[1] is the view prefix: every key of a namespace shares its ``{namespace}`` hash slot,
# so the keys read live where the declared one does.
_GET = """
local blobs = redis.call('MGET', unpack(cmsgpack.unpack(ARGV[1])))
local pieces, first, size = {}, 1, 0
for i = 1, #blobs do
  local blob = blobs[i] or '\\192'
  blobs[i] = blob
  if size + #blob > 8000 and i > first then
    pieces[#pieces + 1] = table.concat(blobs, '', first, i - 1)
    first, size = i, 0
  end
  size = size + #blob
end
pieces[#pieces + 1] = table.concat(blobs, '', first, #blobs)
return pieces
"""

# Keys per script call: large enough to amortise the call, small enough not to block Redis
# for long (a script runs alone); the calls of one put share one pipeline round trip.
_KEYS_PER_CALL = 500
_ENTITIES_PER_CALL = 1000  # Lua's unpack() takes at most ~8,000 values
_ARRAY32 = struct.Struct(">BI")

# Filling the __dict__ of a new EntityVector (and VectorLookup) skips the object.__setattr__
# calls of a frozen dataclass's __init__ (some 15 µs per 100 vectors, as many for lookups);
# that is only the same thing while its __init__ does nothing else, which is checked here
# rather than assumed.
_PLAIN_VECTOR = all(
    not hasattr(cls, "__post_init__") and "__slots__" not in vars(cls)
    for cls in (EntityVector, VectorLookup)
)


class RedisOnlineStore:
    """The online feature store on Redis (≥ 6.2), with the sync redis-py client.

    An entity's vector of one pipeline is the string key
    ``gristmill:{<namespace>}:online:<view>:<pipeline>:<entity>`` holding one msgpack blob
    (event time, expiry, newer time, written time, origin, feature names, values); the set
    ``gristmill:{<namespace>}:online-pipelines:<view>`` names the view's pipelines. ``get``
    of one entity is one GET; of several, one read script (an MGET whose reply is a few
    strings, not one per entity); ``put`` is a Lua script per 500 vectors, all in one
    pipeline, that writes a vector only when its event time is newer than the stored one
    of its pipeline, and marks whichever of two pipelines' vectors of an entity is older as
    superseded; ``get`` checks such a mark against the other pipelines' vectors as they
    are now, so it lapses once the newer ones are deleted. A vector with a TTL also gets a
    Redis expiry one more TTL (at most a day) after ``event_time + ttl``, so Redis drops
    expired vectors itself; ``get`` checks the expiry, so a vector is never served late.

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
        groups: dict[str, list[EntityVector]] = {}
        for vector in vectors:
            problem = unnamed_origin(vector)
            if problem is not None:
                raise ConfigError(problem)
            groups.setdefault(vector.pipeline, []).append(vector)
        calls = []
        for pipeline, group in groups.items():
            prefix = self._pipeline_prefix(view, pipeline)
            header = [self._pipelines_key(view), self._view_prefix(view), _segment(pipeline)]
            calls.append((header, [prefix + v.entity for v in group], _encode(group, ttl)))
        with self._translated():
            try:
                return self._run_put(calls)
            except redis_errors.NoScriptError:
                self._reload_scripts()
                return self._run_put(calls)

    def get(
        self,
        view: str,
        entities: Sequence[str],
        *,
        pipeline: str,
        features: Sequence[str] | None = None,
    ) -> list[VectorLookup]:
        """One result per entity, in order: found, missing, expired or superseded.

        With ``features``, each vector's values hold only those of the features it has.
        """
        if not entities:
            return []
        prefix = self._pipeline_prefix(view, pipeline)
        client = self._redis
        try:
            if len(entities) == 1:
                blob = client.get(prefix + entities[0])
                found = [None if blob is None else msgpack.unpackb(blob, timestamp=3)]
            else:
                found = self._get_many(prefix, entities)
            self._confirm_marks(view, pipeline, entities, found)
            return _lookups(entities, found, features)
        except redis_errors.NoScriptError:
            self._reload_scripts()
            return self.get(view, entities, pipeline=pipeline, features=features)
        except redis_errors.RedisError as exc:
            raise self._translate(exc) from exc
        except (ValueError, TypeError) as exc:
            raise BackendError(
                f"an online value of view {view!r} is not a gristmill vector ({exc}); "
                "were its keys written by something else, or by an earlier gristmill?"
            ) from exc

    def delete_view(self, view: str, *, pipeline: str | None = None) -> None:
        """Delete the vectors of ``view`` (of one ``pipeline``): a SCAN over their keys."""
        if pipeline is None:
            prefix = self._view_prefix(view)
        else:
            prefix = self._pipeline_prefix(view, pipeline)
        pattern = _GLOB.sub(r"\\\1", prefix) + "*"
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
            if pipeline is None:
                client.unlink(self._pipelines_key(view))
            else:
                client.srem(self._pipelines_key(view), _segment(pipeline))

    # -- internals ---------------------------------------------------------------------------

    @property
    def _redis(self) -> redis.Redis:
        if self._client is None:
            raise BackendError(f"{self!r} is not open; call open() first")
        return self._client

    def _get_many(self, prefix: str, entities: Sequence[str]) -> list[Any]:
        client, sha, pack = self._redis, self._get_sha, msgpack.packb
        keys = [prefix + entity for entity in entities]
        if len(keys) <= _ENTITIES_PER_CALL:
            replies = [client.evalsha(sha, 1, prefix, pack(keys))]
        else:
            with client.pipeline(transaction=False) as pipe:
                for start in range(0, len(keys), _ENTITIES_PER_CALL):
                    pipe.evalsha(sha, 1, prefix, pack(keys[start : start + _ENTITIES_PER_CALL]))
                replies = pipe.execute()
        found: list[Any] = []
        for start, reply in zip(range(0, len(entities), _ENTITIES_PER_CALL), replies, strict=True):
            count = min(_ENTITIES_PER_CALL, len(entities) - start)
            payload = b"".join([_ARRAY32.pack(0xDD, count), *reply])
            found.extend(msgpack.unpackb(payload, timestamp=3))
        return found

    def _confirm_marks(
        self, view: str, pipeline: str, entities: Sequence[str], found: list[Any]
    ) -> None:
        """Check the ``superseded`` marks of ``found`` against the other pipelines' vectors
        as they are now, and correct them in place.

        The put script marks the older side when it writes, but the newer vector may be gone
        since (its pipeline's part deleted, its key dropped by Redis after its TTL): then the
        vector is current again, as SQLite, which decides at read, says too. Only marked
        vectors cost anything: one SMEMBERS and one MGET per call that meets any.
        """
        now = time.time_ns() // 1000
        marked = [
            i
            for i, item in enumerate(found)
            if item is not None and item[3] and not (item[1] and item[1] <= now)
        ]
        if not marked:
            return
        client, mine = self._redis, _segment(pipeline)
        members = cast("set[bytes]", client.smembers(self._pipelines_key(view)))
        others = [p.decode() for p in members if p.decode() != mine]
        view_prefix = self._view_prefix(view)
        keys = [f"{view_prefix}{other}:{entities[i]}" for i in marked for other in others]
        blobs = cast("list[bytes | None]", client.mget(keys)) if keys else []
        for n, i in enumerate(marked):
            own = _micros(found[i][0])
            times = [_event_micros(blob) for blob in blobs[n * len(others) : (n + 1) * len(others)]]
            found[i][3] = max((at for at in times if at is not None and at > own), default=0)

    def _reload_scripts(self) -> None:
        # The server lost its script cache (a restart or SCRIPT FLUSH): load them again.
        self._put_sha = self._redis.script_load(_PUT)
        self._get_sha = self._redis.script_load(_GET)

    def _run_put(self, calls: list[tuple[list[str], list[str], list[bytes]]]) -> int:
        client = self._redis
        sha = self._put_sha
        if len(calls) == 1 and len(calls[0][1]) <= _KEYS_PER_CALL:
            header, keys, args = calls[0]
            return int(client.evalsha(sha, len(keys), *keys, *header, *args))
        with client.pipeline(transaction=False) as pipe:
            for header, keys, args in calls:
                for start in range(0, len(keys), _KEYS_PER_CALL):
                    chunk = keys[start : start + _KEYS_PER_CALL]
                    pipe.evalsha(
                        sha, len(chunk), *chunk, *header, *args[start : start + len(chunk)]
                    )
            return sum(int(written) for written in pipe.execute())

    def _view_prefix(self, view: str) -> str:
        prefix = self._views.get(view)
        if prefix is None:
            if not view:
                raise ConfigError("an online feature view needs a non-empty name")
            prefix = self._views[view] = f"{self._prefix}{_segment(view)}:"
        return prefix

    def _pipeline_prefix(self, view: str, pipeline: str) -> str:
        if not pipeline:
            raise ConfigError(f"a lookup in online view {view!r} needs a pipeline digest")
        return f"{self._view_prefix(view)}{_segment(pipeline)}:"

    def _pipelines_key(self, view: str) -> str:
        return f"gristmill:{{{self.namespace}}}:online-pipelines:{_segment(view)}"

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


def _segment(name: str) -> str:
    """``name`` as one key segment: ':' separates segments, so escaping it keeps views like
    'a:b' (and pipelines like 'sha256:…') distinct."""
    return name.replace("%", "%25").replace(":", "%3A")


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:  # naive times are taken as UTC, as everywhere in gristmill
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def _event_micros(blob: bytes | None) -> int | None:
    """The event time (µs) at the head of a stored blob; ``None`` for none or another layout."""
    if blob is None or len(blob) < _HEAD.size or blob[0] != _ARRAY8:
        return None
    nanos, seconds = struct.unpack_from(">Iq", blob, 4)
    return int(seconds) * 1_000_000 + int(nanos) // 1000


def _stamp(micros: int) -> tuple[int, int]:
    """A time in µs as msgpack's (nanoseconds, seconds)."""
    seconds, rest = divmod(micros, 1_000_000)
    return rest * 1000, seconds


def _encode(vectors: Sequence[EntityVector], ttl: float | None) -> list[bytes]:
    """The vectors' blobs: the put script's ARGV after its header."""
    ttl_us = None if ttl is None else round(ttl * 1_000_000)
    grace = 0 if ttl_us is None else min(ttl_us, round(EXPIRED_KEPT_AT_MOST * 1_000_000))
    head, pack = _HEAD.pack, msgpack.Packer().pack  # one Packer: packb makes one per call
    written_nanos, written_seconds = _stamp(time.time_ns() // 1000)
    times: dict[datetime, tuple[int, int, int]] = {}  # a batch's vectors often share a time
    names_of: dict[tuple[str, ...], bytes] = {}  # and their feature names, almost always
    origins: dict[tuple[str, str], bytes] = {}  # and their origin, always
    args: list[bytes] = []
    for vector in vectors:
        stamp = times.get(vector.event_time)
        if stamp is None:
            event = _micros(vector.event_time)
            stamp = times[vector.event_time] = (event, *_stamp(event))
        event, nanos, seconds = stamp
        expires = 0 if ttl_us is None else max(1, event + ttl_us)  # 0 means "never"
        keep = 0 if ttl_us is None else max(1, expires + grace)
        features = vector.values
        key = tuple(features)
        names = names_of.get(key)
        origin_key = (vector.feature_set_id, vector.pipeline)
        origin = origins.get(origin_key)
        try:
            if names is None:
                names = names_of[key] = pack(pack(key))
            if origin is None:
                origin = origins[origin_key] = pack(pack(list(origin_key)))
            values = pack(list(features.values()))
        except (TypeError, ValueError, OverflowError) as exc:
            raise DataError(
                f"the features of entity {vector.entity!r} cannot be stored online: {exc}; "
                "use None, bool, int, float, str or bytes values"
            ) from exc
        fixed = head(
            _ARRAY8, _EXT8, _TIMESTAMP_SIZE, _TIMESTAMP_TYPE, nanos, seconds,
            _INT64, expires, _INT64, keep, _INT64, 0,
            _EXT8, _TIMESTAMP_SIZE, _TIMESTAMP_TYPE, written_nanos, written_seconds,
        )  # fmt: skip
        args.append(fixed + origin + names + values)
    return args


def _lookups(
    entities: Sequence[str], found: list[Any], features: Sequence[str] | None
) -> list[VectorLookup]:
    """Decoded blobs (``[event_time, expires_us, keep_us, newer_us, written_at, origin,
    names, values]`` or ``None``) as lookups.

    Raises ValueError or TypeError for a blob of another layout.
    """
    now = time.time_ns() // 1000
    names_of: dict[bytes, tuple[str, ...]] = {}
    origins: dict[bytes, tuple[str, str]] = {}
    new, plain = object.__new__, _PLAIN_VECTOR
    lookups: list[VectorLookup] = []
    append = lookups.append
    for entity, item in zip(entities, found, strict=True):
        if item is None:
            append(VectorLookup(entity, "missing"))
            continue
        event_time, expires, _, newer, written, packed_origin, packed, row = item
        if expires and expires <= now:
            append(VectorLookup(entity, "expired", event_time=event_time))
            continue
        if newer:
            later = _EPOCH + newer * _MICROSECOND
            append(VectorLookup(entity, "superseded", event_time=event_time, newer_time=later))
            continue
        names = names_of.get(packed)
        if names is None:
            names = names_of[packed] = tuple(msgpack.unpackb(packed))
        origin = origins.get(packed_origin)
        if origin is None:
            feature_set_id, pipeline = msgpack.unpackb(packed_origin)
            origin = origins[packed_origin] = (feature_set_id, pipeline)
        # The blob was written with as many values as names; zip() given a keyword (even
        # strict=False) costs a third more, some 10 µs per 100 entities.
        values = dict(zip(names, row))  # noqa: B905
        if features is not None:
            values = {name: values[name] for name in features if name in values}
        if plain:
            vector = new(EntityVector)
            state = vector.__dict__
            state["entity"] = entity
            state["values"] = values
            state["event_time"] = event_time
            state["feature_set_id"], state["pipeline"] = origin
            state["written_at"] = written
            result = new(VectorLookup)
            state = result.__dict__
            state["entity"] = entity
            state["status"] = "found"
            state["vector"] = vector
            state["event_time"] = event_time
            state["newer_time"] = None
            append(result)
        else:
            vector = EntityVector(entity, values, event_time, *origin, written)
            append(VectorLookup(entity, "found", vector, event_time))
    return lookups
