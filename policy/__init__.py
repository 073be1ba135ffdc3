"""Who decides: the Policy protocol and ``load(spec)``, the one place policy specs are resolved.

Spec strings: ``builtin`` (default), ``moe:DIR``, ``hf:DIR``, ``openai:MODEL@BASE_URL``,
``scripted``, ``oracle``, ``replay:RUN_DIR``.

Backends register a factory: ``policy.register("moe", factory, form="moe:DIR")`` where
``factory(arg: str | None, **options) -> Policy``. Built-in backends are imported lazily on first
use, so ``galago run --policy scripted`` never imports torch.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from actions.errors import ConfigError
from policy.base import BasePolicy, Episode, HistoryEntry, Policy

__all__ = ["load", "register", "register_lazy", "spec_forms", "Policy", "BasePolicy", "Episode",
           "HistoryEntry", "DEFAULT_POLICY"]

DEFAULT_POLICY = "builtin"

PolicyFactory = Callable[..., Policy]


@dataclass(frozen=True)
class _Backend:
    form: str  # how the spec is written, e.g. "moe:DIR"; shown in errors
    arg: str  # "none", "required" or "optional"
    module: str | None = None  # imported lazily; it must call register(name, ...)
    factory: PolicyFactory | None = None


_BACKENDS: dict[str, _Backend] = {
    "builtin": _Backend("builtin", "none", "policy.moe"),
    "moe": _Backend("moe:DIR", "required", "policy.moe"),
    "hf": _Backend("hf:DIR", "required", "policy.hf"),
    "openai": _Backend("openai:MODEL@BASE_URL", "required", "policy.openai"),
    "scripted": _Backend("scripted", "none", "policy.scripted"),
    "oracle": _Backend("oracle", "none", "policy.scripted"),
    "replay": _Backend("replay:RUN_DIR", "required", "policy.replay"),
}


def register(name: str, factory: PolicyFactory, *, form: str | None = None, arg: str | None = None) -> None:
    """Register (or replace) the factory for spec ``name``. ``form``/``arg`` default to the known ones."""
    old = _BACKENDS.get(name)
    _BACKENDS[name] = _Backend(form or (old.form if old else f"{name}[:ARG]"),
                               arg or (old.arg if old else "optional"),
                               old.module if old else None, factory)


def register_lazy(name: str, module: str, *, form: str, arg: str = "optional") -> None:
    """Declare a backend whose module registers its factory when imported."""
    _BACKENDS[name] = _Backend(form, arg, module, None)


def spec_forms() -> list[str]:
    return [b.form for b in _BACKENDS.values()]


def _valid_forms() -> str:
    return "valid forms: " + ", ".join(spec_forms())


def _split(spec: str) -> tuple[str, str | None]:
    name, sep, arg = spec.partition(":")
    return name.strip().lower(), (arg.strip() if sep else None)


def load(spec: str | None = None, **options) -> Policy:
    """Build the policy a spec string names. Raises ConfigError for unknown or unavailable specs."""
    spec = (spec or DEFAULT_POLICY).strip()
    name, arg = _split(spec)
    backend = _BACKENDS.get(name)
    if backend is None:
        raise ConfigError(f"unknown policy {spec!r}; {_valid_forms()}")
    if backend.arg == "none" and arg:
        raise ConfigError(f"policy {name!r} takes no argument (got {spec!r}); write it as {backend.form}")
    if backend.arg == "required" and not arg:
        raise ConfigError(f"policy {name!r} needs an argument; write it as {backend.form}")
    if name == "openai" and ("@" not in arg or not arg.split("@", 1)[0] or not arg.split("@", 1)[1]):
        raise ConfigError(f"policy {spec!r}: write it as openai:MODEL@BASE_URL, "
                          f"e.g. openai:ui-tars-1.5-7b@http://127.0.0.1:8000/v1")
    if backend.factory is None and backend.module is not None:
        try:
            importlib.import_module(backend.module)
        except ImportError as e:
            raise ConfigError(f"policy {spec!r} is not available here ({backend.module}: {e}); "
                              f"{_valid_forms()}") from None
        backend = _BACKENDS[name]
    if backend.factory is None:
        raise ConfigError(f"policy {spec!r} is not available yet (no backend registered for {name!r}); "
                          f"{_valid_forms()}")
    return backend.factory(arg, **options)
