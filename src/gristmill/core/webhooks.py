"""Webhooks: an alert or a job's summary POSTed as JSON, retried, never raised.

Logged under ``gristmill.webhooks`` whoever sends (a score job, the monitoring stage's drift
alerts, a server's or a stage's rollback), so a webhook that stays down is found in one
place.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger("gristmill.webhooks")


def notify(url: str, body: dict[str, Any], *, attempts: int = 3, timeout: float = 5.0) -> bool:
    """POST ``body`` as JSON to ``url``, up to ``attempts`` times (0.5 s, 1 s, … apart);
    ``True`` once it answered 2xx. A webhook that stays down is logged, not raised."""
    data = json.dumps(body, default=str).encode()
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                if 200 <= answer.status < 300:
                    return True
        except (urllib.error.URLError, OSError) as exc:
            error = str(exc)
        else:
            error = f"HTTP {answer.status}"
        log.warning("webhook %s failed (attempt %d of %d): %s", url, attempt, attempts, error)
        if attempt < attempts:
            time.sleep(0.5 * 2 ** (attempt - 1))
    return False
