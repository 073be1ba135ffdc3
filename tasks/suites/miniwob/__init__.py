"""MiniWoB++ on Playwright: seeded episodes of the `miniwob` package's pages, and oracle teachers.

    from tasks.suites.miniwob import MiniWoBSuite
    suite = MiniWoBSuite()
    task = suite.episode("click-button", seed=7, split="train")   # a Task for agent.loop.Agent
    teacher = suite.oracle("click-button")                         # a Policy that solves it

Importing this package registers the suite as "miniwob" (``galago run miniwob:click-button@7``).
"""
from __future__ import annotations

import tasks
from tasks.suites.miniwob.env import (TEST_SEED_OFFSET, WEBGUM_56, MiniWoBEpisode, MiniWoBSuite, episode_seed,
                                      html_root, page_server, registered_task_ids)
from tasks.suites.miniwob.oracle import ORACLES, MiniWoBOracle, OracleContext, OracleError, load_oracles, oracle

__all__ = ["ORACLES", "TEST_SEED_OFFSET", "WEBGUM_56", "MiniWoBEpisode", "MiniWoBOracle", "MiniWoBSuite",
           "OracleContext", "OracleError", "episode_seed", "html_root", "load_oracles", "oracle", "page_server",
           "registered_task_ids"]

tasks.register_suite("miniwob", MiniWoBSuite)
