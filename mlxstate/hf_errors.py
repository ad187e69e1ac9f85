"""huggingface_hub's errors, each turned into one line that says what to do.

The library's own messages span several lines (URLs, documentation links, the text of the
underlying HTTP error), and the reason that matters is often one or two ``__cause__`` links
down: a 404 without ``X-Error-Code`` arrives as ``LocalEntryNotFoundError`` ("check your
internet connection") caused by an ``HfHubHTTPError``; a hub that cuts bodies short arrives
as the HTTP client's ``RemoteProtocolError``, which is not even an ``OSError``.
"""

from __future__ import annotations

import errno

__all__ = ["describe_hf_error", "hub_endpoint"]

TOKEN_HINT = "$HF_TOKEN / settings.huggingface.token_env"
# Class names of the transport errors of the HTTP client huggingface_hub bundles (httpx, or
# its vendored copy): matched by name so that a renamed package does not break the mapping.
_CUT_OFF = {"RemoteProtocolError", "ReadError", "WriteError"}
_UNREACHABLE = {
    "ConnectError",
    "ConnectTimeout",
    "TimeoutException",
    "ProxyError",
    "ConnectionError",
}


def hub_endpoint(endpoint: str | None) -> str:
    if endpoint:
        return endpoint
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def describe_hf_error(
    exc: BaseException, repo_id: str, revision: str, endpoint: str | None, doing: str
) -> str:
    """One line for ``exc`` raised while ``doing`` something with ``hf://repo_id``."""
    where = hub_endpoint(endpoint)
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno == errno.ENOSPC:
            return f"disk full during {doing} of hf://{repo_id}: free some space, then apply again"
        line = _classify(link, repo_id, revision, where)
        if line is not None:
            return line
    if isinstance(exc, OSError) and exc.strerror:
        name = f" {exc.filename}" if exc.filename else ""
        return f"{doing} of hf://{repo_id} failed: {exc.strerror}{name}"
    return f"{doing} of hf://{repo_id} failed: {type(exc).__name__}: {_first_line(exc)}"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in seen and len(seen) < 10:
        seen.append(link)
        link = link.__cause__ or link.__context__
    return seen


def _classify(exc: BaseException, repo_id: str, revision: str, where: str) -> str | None:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    src = f"hf://{repo_id}"
    if isinstance(exc, GatedRepoError):
        return (
            f"{src} is gated: accept its terms on the hub, and put a token of that account in "
            f"{TOKEN_HINT}"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return _not_found(src)
    if isinstance(exc, RevisionNotFoundError):
        return f"{src} has no revision {revision!r} on the hub (check the model's revision)"
    if isinstance(exc, HfHubHTTPError):
        return _http(exc, src, where)
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "OfflineModeIsEnabled" in names:
        return f"HF_HUB_OFFLINE is set: unset it to download {src}"
    if names & _CUT_OFF:
        return (
            f"the hub at {where} cut off the download of {src} (fewer bytes than announced); "
            "try again later, or check HF_ENDPOINT and any proxy"
        )
    if names & _UNREACHABLE:
        return f"cannot reach the hub at {where} for {src} (check the network or HF_ENDPOINT)"
    return None


def _not_found(src: str) -> str:
    return (
        f"{src} not found on the hub (check the id; private or gated repos need a token in "
        f"{TOKEN_HINT})"
    )


def _http(exc: BaseException, src: str, where: str) -> str:
    response = getattr(exc, "response", None)
    status = int(getattr(response, "status_code", 0) or 0)
    if status == 404:
        return _not_found(src)
    if status == 401:
        return f"the hub at {where} rejected the token for {src} (HTTP 401): check {TOKEN_HINT}"
    if status == 403:
        return (
            f"the hub at {where} refused access to {src} (HTTP 403): check that the token in "
            f"{TOKEN_HINT} may read it"
        )
    if status == 429:
        return f"the hub at {where} is rate-limiting requests for {src} (HTTP 429): try later"
    if status >= 500:
        return f"the hub at {where} failed with HTTP {status} for {src}: try again later"
    return f"the hub at {where} answered HTTP {status or '?'} for {src}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__
