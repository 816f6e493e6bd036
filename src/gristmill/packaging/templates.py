"""The text files of a package: its entry point, its Dockerfile and its README.

Kept apart from the writer so what a package says can be read (and reviewed) in one place.
The Dockerfile installs the lock only (``--no-deps``: the lock is complete), runs as a user
without privileges, and checks readiness with the standard library (slim images have no
curl).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from gristmill.servables.port import ServableManifest

PORT = 8080
PROBE = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/readyz', timeout=2)"
"""The health check: a non-2xx answer or no answer raises, so the exit code is not 0."""


@dataclass(frozen=True)
class Facts:
    """What the templates say of a package."""

    manifest: ServableManifest
    gristmill: str
    python: str = f"{sys.version_info.major}.{sys.version_info.minor}"
    port: int = PORT


ENTRY_POINT = '''\
"""Serve the model packaged in this folder over HTTP, alone: no metadata store, registry
or bus. Written by `gristmill package`; see README.md.

    python serve.py [--host 0.0.0.0] [--port {port}]

Every file of the package is checked against its digest in package.json before the
server starts; a damaged or replaced file stops it with one line naming the file.
"""

import sys
from pathlib import Path

try:
    from gristmill.server.standalone import main
except ImportError as exc:
    sys.exit(
        f"error: {{exc}}; install the lock first: "
        "pip install --no-deps --find-links wheels -r requirements.txt"
    )

if __name__ == "__main__":
    sys.exit(main(Path(__file__).resolve().parent, sys.argv[1:]))
'''

DOCKERFILE = """\
# {ref} ({kind} servable {digest}), packaged by gristmill {gristmill}.
FROM python:{python}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin model
WORKDIR /srv/model

# The lock is complete (every distribution pinned), so pip resolves nothing itself.
# A gristmill wheel that is not on your index goes in wheels/ (see README.md).
COPY requirements.txt ./
COPY wheels/ ./wheels/
RUN pip install --no-cache-dir --no-deps --find-links ./wheels -r requirements.txt

COPY package.json serve.py README.md ./
COPY model/ ./model/

USER model
EXPOSE {port}
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \\
    CMD ["python", "-c", "{probe}"]
CMD ["python", "serve.py", "--host", "0.0.0.0", "--port", "{port}"]
"""

README = """\
# {ref}, packaged

`{ref}` ({task}, {kind} servable `{digest}`), written by `gristmill package` with
gristmill {gristmill}. This folder serves it alone: no metadata store, registry or bus.

| file | what |
|---|---|
| `model/` | the compiled servable (`servable.json`, its manifest, and its artifacts) |
| `package.json` | model, version, and the digest of every file (checked at start) |
| `requirements.txt` | the lock: every distribution it needs, pinned with `==` |
| `serve.py` | the entry point: HTTP on port {port} |
| `Dockerfile` | python {python} slim, non-root, `HEALTHCHECK` on `/readyz` |
| `wheels/` | put wheels here that your package index does not have (e.g. gristmill's) |

## Run it without Docker

    python{python} -m venv .venv
    .venv/bin/pip install --no-deps --find-links wheels -r requirements.txt
    .venv/bin/python serve.py --port {port}

## Run it with Docker

    docker build -t {image} .
    docker run --rm -p {port}:{port} {image}

If gristmill {gristmill} is not on your package index, build its wheel first:
`pip wheel --no-deps /path/to/gristmill -w wheels/`.

## Score

    curl -s localhost:{port}/v1/models/{model}/predict -H 'content-type: application/json' \\
         -d '{{"rows": [{example}]}}'

(Placeholder values: put real ones. One object per row; `columns` of lists work too.)

The same model answers the Open Inference Protocol v2 (`/v2/models/{model}/infer`,
`/v2/health/ready`) and MLflow's scoring protocol (`/invocations`). Readiness: `/readyz`;
metrics: `/metrics`. Settings such as `GRISTMILL_SERVE__TOKEN` (a bearer token for the admin
routes) and `GRISTMILL_SERVE__MAX_ROWS` apply as for `gristmill serve`.

Inputs ({count}): {inputs}.
"""


def entry_point(facts: Facts) -> str:
    return ENTRY_POINT.format(port=facts.port)


def dockerfile(facts: Facts) -> str:
    m = facts.manifest
    return DOCKERFILE.format(
        ref=m.ref,
        kind=m.kind,
        digest=m.digest,
        gristmill=facts.gristmill,
        python=facts.python,
        port=facts.port,
        probe=PROBE.format(port=facts.port),
    )


def readme(facts: Facts) -> str:
    m = facts.manifest
    return README.format(
        ref=m.ref,
        model=m.model,
        task=m.task,
        kind=m.kind,
        digest=m.digest,
        gristmill=facts.gristmill,
        python=facts.python,
        port=facts.port,
        image=f"{m.model.lower()}:{m.version}",
        example=json.dumps({c.name: _example(c.type) for c in m.inputs}),
        count=len(m.inputs),
        inputs=", ".join(f"`{c.name}` ({c.type})" for c in m.inputs),
    )


def _example(kind: str) -> object:
    return {"float64": 1.0, "int64": 1, "bool": True, "datetime": "2024-01-01T00:00:00"}.get(
        kind, "text"
    )
