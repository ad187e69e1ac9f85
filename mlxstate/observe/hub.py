"""Remote facts for ``mlx plan --refresh``: what the Hugging Face hub says now.

The only observer that talks to a network, and only when asked. It goes through
``huggingface_hub``'s API with the configured endpoint (``HF_ENDPOINT``) and the token from
``settings.huggingface.token_env``; tests point it at the loopback fake hub.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlxstate.errors import PlanError
from mlxstate.facts import RemoteFile, RemoteRepo
from mlxstate.hf_errors import describe_hf_error
from mlxstate.sources import HfSource

if TYPE_CHECKING:
    from mlxstate.mlxyaml.models import Spec
    from mlxstate.settings import Settings

__all__ = ["hub_facts"]


def hub_facts(spec: Spec, settings: Settings, api: Any = None) -> dict[tuple[str, str], RemoteRepo]:
    """(repo id lowercased, revision) → the commit the hub resolves it to, and its files."""
    if api is None:
        from huggingface_hub import HfApi

        # The endpoint is passed explicitly: huggingface_hub reads HF_ENDPOINT only once, at
        # import, and mlx resolves every environment variable in settings.py.
        api = HfApi(endpoint=settings.hf_endpoint, token=settings.hf_token or False)
    out: dict[tuple[str, str], RemoteRepo] = {}
    for name, model in spec.models.items():
        src = model.parsed_source
        if not isinstance(src, HfSource) or model.ensure == "absent":
            continue
        revision = model.revision or "main"
        info = _model_info(api, name, src, revision)
        files = tuple(_remote_file(s) for s in info.siblings or ())
        out[(src.repo_id.lower(), revision)] = RemoteRepo(
            src.repo_id, revision, str(info.sha), files
        )
    return out


def _model_info(api: Any, name: str, src: HfSource, revision: str) -> Any:
    try:
        return api.model_info(src.repo_id, revision=revision, files_metadata=True)
    except Exception as exc:
        # Whatever failed (an HTTP status, or a transport error of the HTTP client the
        # library bundles, which is not an OSError), the hub could not answer: one line.
        endpoint = getattr(api, "endpoint", None)
        line = describe_hf_error(exc, src.repo_id, revision, endpoint, "lookup")
        raise PlanError(
            f"models.{name}: {line}", hint="`mlx plan` without --refresh works offline"
        ) from None


def _remote_file(sibling: Any) -> RemoteFile:
    lfs = getattr(sibling, "lfs", None)
    blob = getattr(lfs, "sha256", None) if lfs is not None else None
    return RemoteFile(
        path=sibling.rfilename,
        size=int(sibling.size or (getattr(lfs, "size", 0) if lfs else 0) or 0),
        blob=str(blob or sibling.blob_id or ""),
    )
