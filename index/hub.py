"""Where a Hugging Face model comes from: a local folder, the local cache, or the hub when it
answers. Decided without importing torch, so an offline machine learns it in a second."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from index.errors import CitebotError

_HUB_PROBE_SECONDS = 1.5


class ModelUnavailableError(CitebotError):
    """The configured model cannot be loaded on this machine."""


@dataclass(frozen=True)
class ModelSource:
    """A model name to hand to sentence-transformers, and whether it is a local folder."""

    name: str
    is_local_folder: bool


def locate_model(model: str, role: str) -> ModelSource:
    """Resolve a model name or path; raise ModelUnavailableError when it is neither on disk
    nor downloadable. `role` ("embedding model", "reranker") names it in the message."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        return ModelSource(str(folder.resolve()), is_local_folder=True)
    if not in_hub_cache(model) and not hub_reachable():
        raise ModelUnavailableError(
            f"{role} {model!r} is not in the local cache and the Hugging Face hub is unreachable"
        )
    return ModelSource(model, is_local_folder=False)


def in_hub_cache(name: str) -> bool:
    """Whether the Hugging Face cache holds this model (its config file, at least)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid repository id
        return False


def hub_reachable() -> bool:
    """A quick TCP check of the hub, so an offline machine falls back in seconds, not minutes."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "", port), timeout=_HUB_PROBE_SECONDS):
            return True
    except OSError:
        return False
