"""How every Hugging Face model is loaded (embedders, rerankers, tokenizers): from a local
folder or the local cache first, from the hub only when it answers. Whether a model can be had
is decided without importing torch, so an offline machine learns it in a second."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from index.errors import CitebotError

_HUB_PROBE_SECONDS = 1.5
T = TypeVar("T")


class ModelUnavailableError(CitebotError):
    """The configured model cannot be loaded on this machine."""


def load_model(
    model: str, role: str, load: Callable[[str, bool], T], *, download: bool = True
) -> tuple[T, str]:
    """The one rule for loading a Hugging Face model: `load(name, local_files_only)` from a
    local folder or the local cache first, then, when `download` is allowed and the hub
    answers, from the hub, so any model name works online and nothing downloads offline.

    Returns the model and the name it was loaded by (a folder's full path, or the hub name).
    Whether the model can be had is decided before `load` first runs (it may import torch,
    which alone takes seconds), so an offline miss costs a second; every miss is a
    `ModelUnavailableError` naming `role` ("embedding model", "reranker", ...).
    """
    folder = Path(model).expanduser()
    if folder.is_dir():
        name = str(folder.resolve())
        try:
            return load(name, True), name
        except (OSError, ValueError) as error:
            raise ModelUnavailableError(f"cannot load the {role} folder {name}: {error}") from None
    cached = in_hub_cache(model)
    if not cached and not (download and hub_reachable()):
        where = " and the Hugging Face hub is unreachable" if download else ""
        raise ModelUnavailableError(f"{role} {model!r} is not in the local cache{where}")
    try:
        return load(model, True), model
    except (OSError, ValueError) as error:
        # Not in the cache after all, or only part of it.
        if not download or (cached and not hub_reachable()):
            raise ModelUnavailableError(
                f"cannot load {role} {model!r} from the local cache: {error}"
            ) from None
    try:
        return load(model, False), model
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(f"cannot load {role} {model!r}: {error}") from None


def in_hub_cache(name: str) -> bool:
    """Whether the Hugging Face cache holds this model (its config file, at least).

    When the cache has no folder for the model (named as `huggingface_hub` names it), the
    answer is no without importing the cache lookup itself, whose 50 ms of imports were a
    twentieth of a question's start-up with the default `auto` backend offline.
    """
    from huggingface_hub import constants

    separator = constants.REPO_ID_SEPARATOR
    if not (Path(constants.HF_HUB_CACHE) / separator.join(["models", *name.split("/")])).is_dir():
        return False
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
