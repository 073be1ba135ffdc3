"""What to do: task files, suites, and ``resolve_task`` which turns a CLI reference into a Task.

A reference is a task file path (``tasks/examples/login.yaml``) or ``SUITE:TASK[@SEED]``
(``miniwob:click-button@7``). Suites register themselves with ``register_suite(name, factory)``;
the built-in ones are imported lazily so a task-file run never pays for them.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Callable

from actions.errors import ConfigError

EXAMPLES_DIR = Path(__file__).parent / "examples"

_SUITES: dict[str, Callable[[], object]] = {}
_SUITE_INSTANCES: dict[str, object] = {}
# Suites shipped with galago: name -> module that calls register_suite() when imported.
_LAZY_SUITES: dict[str, str] = {"miniwob": "tasks.suites.miniwob", "widgets": "tasks.suites.widgets"}

_SUITE_REF = re.compile(r"^(?P<suite>[a-z][a-z0-9_-]*):(?P<task>[A-Za-z0-9._-]+)(?:@(?P<seed>-?\d+))?$")


def register_suite(name: str, factory: Callable[[], object]) -> None:
    """Make ``name:TASK`` references resolve; ``factory()`` returns a tasks.suites.base.Suite."""
    _SUITES[name] = factory
    _SUITE_INSTANCES.pop(name, None)


def suite_names() -> list[str]:
    return sorted(set(_SUITES) | set(_LAZY_SUITES))


def get_suite(name: str):
    """The Suite registered as ``name`` (created once). Raises ConfigError for unknown names."""
    if name not in _SUITES and name in _LAZY_SUITES:
        try:
            importlib.import_module(_LAZY_SUITES[name])
        except ImportError as e:
            raise ConfigError(f"suite {name!r} is not available: {e}") from None
    if name not in _SUITES:
        raise ConfigError(f"unknown suite {name!r}; known suites: {', '.join(suite_names())}")
    if name not in _SUITE_INSTANCES:
        _SUITE_INSTANCES[name] = _SUITES[name]()
    return _SUITE_INSTANCES[name]


def load_task_file(path):
    from tasks.spec import load_task_file as _load

    return _load(path)


def resolve_task(ref: str, *, seed: int | None = None, split: str = "test"):
    """A Task for a task-file path or ``SUITE:TASK[@SEED]``. Raises ConfigError for bad refs.

    ``seed`` is used when the reference carries none (default 0).
    """
    ref = ref.strip()
    if not ref:
        raise ConfigError("empty task reference; give a task file or SUITE:TASK[@SEED]")
    path = Path(ref)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        return load_task_file(path)
    m = _SUITE_REF.match(ref)
    if m is None:
        raise ConfigError(f"{ref!r} is neither a task file nor SUITE:TASK[@SEED] "
                          f"(e.g. tasks/examples/login.yaml or miniwob:click-button@7)")
    suite = get_suite(m["suite"])
    task_id = m["task"]
    known = list(suite.task_ids())
    if task_id not in known:
        hint = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
        raise ConfigError(f"suite {m['suite']!r} has no task {task_id!r}; some of its tasks: {hint}")
    episode_seed = int(m["seed"]) if m["seed"] is not None else (seed if seed is not None else 0)
    return suite.episode(task_id, episode_seed, split=split)


def example_task_files() -> list[Path]:
    """The example task files shipped with galago, in a stable order."""
    return sorted(EXAMPLES_DIR.glob("*.yaml"))
