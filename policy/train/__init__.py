"""Training the built-in policy.

* ``policy.train.data``    — the demonstration format (``DemoStep``, ``DemoWriter``, ``load_demos``)
* ``policy.train.distill`` — SFT on demonstrations (``train_distill``)
* ``policy.train.grpo``    — reinforcement learning with rule-based rewards

Only the data format is imported here, so collectors can write demonstrations without torch.
"""
from policy.train.data import DemoStep, DemoWriter, EpisodeRecorder, load_demos

__all__ = ["DemoStep", "DemoWriter", "EpisodeRecorder", "load_demos"]
