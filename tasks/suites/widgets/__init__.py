"""The widget world: seeded pages of everyday web widgets, instructions, rule-based checks, oracles.

    from tasks.suites.widgets import WidgetSuite
    suite = WidgetSuite()
    task = suite.episode("fill-form-submit", seed=3, split="train")   # a Task for the agent loop
    oracle = suite.oracle("fill-form-submit")                          # a Policy that solves it
"""
from __future__ import annotations

import tasks
from tasks.suites.widgets.episode import WidgetEpisode
from tasks.suites.widgets.families import FAMILIES
from tasks.suites.widgets.generator import TEST_OFFSET, GeneratedEpisode, canonical_seed, generate, vocabulary
from tasks.suites.widgets.goal import Goal
from tasks.suites.widgets.oracle import WidgetOracle
from tasks.suites.widgets.suite import WidgetSuite

__all__ = ["FAMILIES", "TEST_OFFSET", "GeneratedEpisode", "Goal", "WidgetEpisode", "WidgetOracle", "WidgetSuite",
           "canonical_seed", "generate", "vocabulary"]

tasks.register_suite("widgets", WidgetSuite)
