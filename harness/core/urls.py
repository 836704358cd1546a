"""Credentials never leave a URL: ``redact_url`` before any URL is written (manifest, cache key) or printed."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMS = re.compile(r"(key|token|secret|password|passwd|pwd|auth|signature|sig|credential)", re.I)


def redact_url(url: str | None) -> str | None:
    """``url`` with ``user:password@`` replaced by ``***@`` and the values of key-like query parameters
    (``api-key``, ``token``, ``sig``, ...) by ``***``; anything that is not a URL comes back unchanged."""
    if not url or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if SECRET_PARAMS.search(k) else v) for k, v in pairs], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # unparsable: keep only the scheme and host-looking prefix
        return re.sub(r"//[^/@]*@", "//***@", url.split("?", 1)[0])


def redact_text(text: str, url: str | None) -> str:
    """``text`` with every occurrence of ``url`` (and of its secrets) replaced by the redacted form."""
    if not url:
        return text
    safe = redact_url(url) or ""
    text = text.replace(url, safe)
    parts = urlsplit(url)
    secrets = [parts.password] if parts.password else []
    secrets += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if SECRET_PARAMS.search(k) and v]
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
