"""
One webhook request as dbt Cloud sends it: a ``POST`` of the JSON body with an ``Authorization`` header
holding the hex HMAC-SHA256 of the raw body, keyed with the subscription's ``hmac_secret`` (no scheme
prefix), and a 10 second timeout. Also the ids and secrets subscriptions and events get.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import string
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from dbt_cloud_local import __version__

log = logging.getLogger(__name__)

#: dbt Cloud's documented per-attempt timeout.
TIMEOUT_SECONDS = 10.0
_ID_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """A dbt Cloud-style identifier: ``wsu_`` (subscription) or ``wev_`` (event) and 27 characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(27))


def new_secret() -> str:
    """A subscription's ``hmac_secret``: 256 random bits, hex."""
    return secrets.token_hex(32)


def sign(secret: str, body: bytes) -> str:
    """The ``Authorization`` header value: hex HMAC-SHA256 of the raw body keyed with the secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def shown_url(url: str) -> str:
    """The URL for logs: scheme, host and path only (a query may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def post(url: str, body: bytes, signature: str, timeout: float = TIMEOUT_SECONDS) -> int:
    """POST one attempt; the HTTP status, or 0 when there was no HTTP answer (refused, timed out)."""
    request = urllib.request.Request(  # noqa: S310 - the subscription's URL must be http(s), checked on save
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": signature,
            "User-Agent": f"dbt-cloud-local-webhooks/{__version__}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError) as exc:  # URLError, timeouts, TLS failures
        log.info("Webhook delivery to %s got no answer: %s", shown_url(url), exc)
        return 0
