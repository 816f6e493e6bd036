"""Service URLs made safe to show: passwords and secret query parameters masked."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# Query parameters that carry secrets in the URL forms gristmill accepts (libpq, redis, nats).
_SECRET_PARAMS = frozenset({"password", "passwd", "pwd", "secret", "token", "sslpassword"})


def mask_url(url: str) -> str:
    """``url`` with its password and secret query parameters replaced by ``***``.

    Anything that does not parse as a URL is returned unchanged: this is for messages and
    logs, and must never fail. ``postgresql://ann:s3cret@db/x`` → ``postgresql://ann:***@db/x``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    userinfo, at, hostinfo = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() in _SECRET_PARAMS for name, _ in pairs):
            masked = [(n, MASK if n.lower() in _SECRET_PARAMS else v) for n, v in pairs]
            query = urlencode(masked, safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))
