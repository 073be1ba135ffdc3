"""GRPO: the loss against hand-computed cases, the learner's bookkeeping, and a tiny policy that
learns a trivial task in real Chromium from rewards alone."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from actions.errors import ActionParseError, ConfigError
from perception.observation import Box, Element, Observation
from perception.space import CoordinateSpace
from policy.moe import GalagoTokenizer, load_dir
from policy.train.grpo import (GRPOConfig, GRPOLearner, compute_advantages, group_advantages, grpo_loss, k3_kl,
                               random_init)
from policy.train.rollout import (RewardConfig, Rollout, SamplingPolicy, StepSample,
                                  episode_reward, prepare_for_rl, restrict_vocabulary)

torch.set_num_threads(1)  # tiny matrices: more threads only add contention on a shared CPU

LN = math.log


# ---------------------------------------------------------------------------------------------
# advantages
# ---------------------------------------------------------------------------------------------
def test_group_advantages_hand_computed():
    # mean 0.5, sample std sqrt(4 * 0.25 / 3) = 0.57735 -> +-0.5 / 0.57735 = +-0.866025
    adv = group_advantages([1, 0, 0, 1], adv_eps=0.0)
    assert adv == pytest.approx([0.8660254, -0.8660254, -0.8660254, 0.8660254], abs=1e-6)
    # with the default eps the std grows by 1e-4
    assert group_advantages([1, 0, 0, 1])[0] == pytest.approx(0.5 / (math.sqrt(1 / 3) + 1e-4), abs=1e-9)
    # rewards 1.1, 0.1, 0.0: mean 0.4, deviations .7 -.3 -.4, std sqrt((.49+.09+.16)/2) = sqrt(.37)
    adv = group_advantages([1.1, 0.1, 0.0], adv_eps=0.0)
    assert adv == pytest.approx([0.7 / math.sqrt(0.37), -0.3 / math.sqrt(0.37), -0.4 / math.sqrt(0.37)])
    assert sum(adv) == pytest.approx(0.0, abs=1e-12)


def test_tied_groups_are_skipped():
    assert group_advantages([0.1, 0.1, 0.1]) is None
    assert group_advantages([1.0]) is None  # one rollout: no baseline
    rs = [Rollout("a", 0, k, 0, steps=[_sample()], reward=r) for k, r in enumerate([1.0, 1.0, 1.0])]
    rs += [Rollout("b", 0, k, 0, steps=[_sample()], reward=r) for k, r in enumerate([1.0, 0.0, 0.0])]
    rs += [Rollout("b", 0, 3, 0, steps=[_sample()], reward=5.0, error="browser crashed")]
    adv = compute_advantages(rs, adv_eps=0.0)
    assert (adv.groups_used, adv.groups_skipped, adv.errored) == (1, 1, 1)
    assert sorted(adv.values) == [3, 4, 5]  # only group b, without its errored rollout
    # b's rewards 1, 0, 0: mean 1/3, std sqrt((4/9 + 1/9 + 1/9) / 2) = sqrt(1/3)
    assert adv.values[3] == pytest.approx((2 / 3) / math.sqrt(1 / 3))
    assert adv.values[4] == pytest.approx((-1 / 3) / math.sqrt(1 / 3))


def test_episode_reward():
    ok = Rollout("a", 0, 0, 0, steps=[_sample(parsed=True)] * 2, success=True, n_steps=2)
    bad = Rollout("a", 0, 1, 0, steps=[_sample(parsed=True), _sample(parsed=False)], success=False, n_steps=2)
    cfg = RewardConfig(format_reward=0.1, step_cost=0.05)
    assert episode_reward(ok, cfg) == pytest.approx(1.0 + 0.1 - 0.1)
    assert episode_reward(bad, cfg) == pytest.approx(0.0 + 0.0 - 0.1)
    assert episode_reward(Rollout("a", 0, 2, 0, steps=[_sample()], success=True, error="crash"), cfg) == 0.0


# ---------------------------------------------------------------------------------------------
# the clipped loss and the KL
# ---------------------------------------------------------------------------------------------
def _t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_clipping_positive_and_negative_advantage():
    old = _t([LN(0.4), LN(0.4)], [LN(0.4), LN(0.4)])
    new = _t([LN(0.6), LN(0.2)], [LN(0.6), LN(0.2)]).requires_grad_(True)  # ratios 1.5 and 0.5
    mask = torch.ones(2, 2, dtype=torch.bool)
    # A=+1: min(1.5, 1.2) = 1.2 (clipped), min(0.5, 0.8) = 0.5 -> row mean 0.85
    # A=-1: min(-1.5, -1.2) = -1.5, min(-0.5, -0.8) = -0.8 (clipped) -> row mean -1.15
    out = grpo_loss(new, old, None, torch.tensor([1.0, -1.0]), mask, clip_eps=0.2)
    assert float(out.loss.detach()) == pytest.approx(-(0.85 - 1.15) / 2)
    assert out.clip_frac == pytest.approx(0.5)
    assert out.ratio == pytest.approx(1.0)
    out.loss.backward()
    # d(-obj)/d new = -A * ratio * w on unclipped tokens (w = 1/2 tokens / 2 rows), 0 on clipped ones
    assert new.grad.flatten().tolist() == pytest.approx([0.0, -0.5 / 4, 1.5 / 4, 0.0])


def test_ratio_one_gives_advantage_weighted_mean_per_row():
    # rows of 1 and 3 tokens: each row is averaged over its own tokens first (1/|o_i|), then rows
    lp = _t([LN(0.5), 0, 0], [LN(0.5), LN(0.5), LN(0.5)])
    mask = torch.tensor([[True, False, False], [True, True, True]])
    out = grpo_loss(lp, lp, None, torch.tensor([2.0, -1.0]), mask)
    assert float(out.loss.detach()) == pytest.approx(-(2.0 - 1.0) / 2)  # a token-level mean would give +0.25
    assert out.clip_frac == 0.0


def test_k3_kl_value_and_gradient():
    new = _t([LN(0.5)]).requires_grad_(True)
    ref = _t([LN(0.25)])
    # d = ref - new = ln 0.5; exp(d) - d - 1 = 0.5 + 0.693147 - 1
    assert float(k3_kl(new.detach(), ref)) == pytest.approx(0.5 + math.log(2) - 1)
    assert float(k3_kl(ref, ref)) == 0.0
    out = grpo_loss(new, new.detach(), ref, torch.tensor([0.0]), torch.ones(1, 1, dtype=torch.bool), beta=0.1)
    assert float(out.loss.detach()) == pytest.approx(0.1 * (0.5 + math.log(2) - 1))
    assert out.kl == pytest.approx(0.5 + math.log(2) - 1)
    out.loss.backward()
    # d/dnew [exp(ref-new) - (ref-new) - 1] = 1 - exp(ref-new) = 0.5 -> beta * 0.5
    assert float(new.grad) == pytest.approx(0.05)


def test_token_weights_override_row_means():
    lp = _t([0.0, 0.0], [0.0, 0.0])
    mask = torch.ones(2, 2, dtype=torch.bool)
    w = _t([0.1, 0.2], [0.3, 0.4])
    out = grpo_loss(lp, lp, None, torch.tensor([1.0, 2.0]), mask, token_weights=w)
    assert float(out.loss.detach()) == pytest.approx(-(0.1 + 0.2 + 2 * (0.3 + 0.4)))


# ---------------------------------------------------------------------------------------------
# the learner on real samples of a tiny model (no browser)
# ---------------------------------------------------------------------------------------------
ACTIONS = {  # a tiny action vocabulary: each whole action is one token (relative-1000 grid)
    "go": "click(start_box='(250,500)')",
    "no": "click(start_box='(750,500)')",
    "top": "click(start_box='(500,100)')",
    "bottom": "click(start_box='(500,900)')",
}


def tiny_tokenizer() -> tuple[GalagoTokenizer, list[int]]:
    texts = ["Click the GO button.", "button GO", "button NO", "Thought: Click GO."] * 4
    base = GalagoTokenizer.train(texts, vocab_size=1100)
    # number tokens are added tokens of their own, so an action token is spelled with them
    spelled = [a.replace("250", "<|n250|>").replace("750", "<|n750|>").replace("500", "<|n500|>")
               .replace("100", "<|n100|>").replace("900", "<|n900|>") for a in ACTIONS.values()]
    base.tok.add_tokens(spelled)
    tok = GalagoTokenizer(base.tok)
    ids = [tok.tok.token_to_id(s) for s in spelled]
    assert [tok.decode([i]) for i in ids] == list(ACTIONS.values())
    return tok, ids


def _sample(parsed: bool = True) -> StepSample:
    from policy.moe.prompt import EncodedPrompt

    p = EncodedPrompt(torch.zeros(3, 64, 64, dtype=torch.uint8), [1, 7], [5, 5], [(0.0,) * 4] * 2, [False] * 2)
    return StepSample(p, [2], [-1.0], parsed)


def _observation() -> Observation:
    img = Image.new("RGB", (400, 300), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([20, 50, 180, 250], fill="green")
    d.rectangle([220, 50, 380, 250], fill="red")
    els = [Element(0, "button", "GO", Box(20, 50, 160, 200)), Element(1, "button", "NO", Box(220, 50, 160, 200))]
    return Observation(img, 400, 300, elements=els, space=CoordinateSpace.relative(400, 300))


def _sampled_rollouts(policy: SamplingPolicy, n: int, steps: int = 2) -> list[Rollout]:
    obs, out = _observation(), []
    for k in range(n):
        policy.begin(100 + k)
        history: list[str] = []
        for _ in range(steps):
            try:
                step = policy.act("Click the GO button.", obs, history)
                history.append(step.raw)
            except ActionParseError:
                history.append("")
        r = Rollout("t", 0, k, 0, steps=list(policy.samples), n_steps=steps)
        r.reward = float(policy.samples[0].text == ACTIONS["go"])
        out.append(r)
    return out


def test_sampling_records_tokens_and_ratio_is_one_on_policy():
    tok, ids = tiny_tokenizer()
    model = prepare_for_rl(random_init(tok, "tiny", seed=1))
    # full vocabulary: a random model writes garbage that does not parse, and is still recorded
    policy = SamplingPolicy(model, tok, max_new_tokens=6)
    rs = _sampled_rollouts(policy, 2)
    assert all(len(s.tokens) == len(s.logprobs) > 0 for r in rs for s in r.steps)
    assert not any(s.parsed for r in rs for s in r.steps)
    rs[0].reward, rs[1].reward = 1.0, 0.0
    # the learner's first forward recomputes pi_old exactly: routing and sampling agree
    learner = GRPOLearner(model, GRPOConfig(group=2, beta=0.0, lr=1e-3, minibatches=1))
    st = learner.update(rs)
    assert st.groups_used == 1 and st.optimizer_steps == 1 and st.tokens == sum(r.n_tokens for r in rs)
    assert st.first_ratio_dev < 1e-4


def test_action_vocabulary_restricts_sampling():
    tok, ids = tiny_tokenizer()
    model = random_init(tok, "tiny", seed=2)
    restrict_vocabulary(model, ids)
    policy = SamplingPolicy(prepare_for_rl(model), tok, max_new_tokens=1)
    rs = _sampled_rollouts(policy, 8, steps=1)
    texts = {r.steps[0].text for r in rs}
    assert texts <= set(ACTIONS.values()) and len(texts) > 1
    assert all(r.steps[0].parsed and r.steps[0].logprobs[0] > math.log(0.05) for r in rs)
    restrict_vocabulary(model, None)  # removable: the plain model samples from the whole vocabulary
    assert "logits" not in vars(model)
    with pytest.raises(ValueError, match="subset"):
        restrict_vocabulary(model, [10 ** 6])


def test_gradient_accumulation_is_exact_and_reference_stays_frozen():
    tok, ids = tiny_tokenizer()
    base = random_init(tok, "tiny", seed=3)
    policy = SamplingPolicy(prepare_for_rl(copy.deepcopy(base)), tok, max_new_tokens=4)
    rs = _sampled_rollouts(policy, 4)
    for k, r in enumerate(rs):
        r.reward = float(k % 2)
    params = []
    for micro in (1, 16):  # one step sample per forward vs everything in one forward
        cfg = GRPOConfig(group=4, beta=0.04, minibatches=1, micro_batch=micro, grad_clip=0.0)
        model = copy.deepcopy(base)
        # plain SGD with lr 1: the parameter change is exactly minus the accumulated gradient
        learner = GRPOLearner(model, cfg, optimizer=torch.optim.SGD(model.parameters(), lr=1.0))
        ref_before = {k: v.clone() for k, v in learner.reference.state_dict().items()}
        st = learner.update(rs)
        assert st.optimizer_steps == 1 and st.samples == 8
        assert all(torch.equal(v, learner.reference.state_dict()[k]) for k, v in ref_before.items())
        params.append(torch.cat([p.detach().flatten() for p in learner.model.parameters()]))
    assert not torch.equal(params[0], torch.cat([p.detach().flatten() for p in base.parameters()]))
    assert torch.allclose(params[0], params[1], atol=1e-6, rtol=1e-4)


def test_config_validation():
    with pytest.raises(ValueError, match="group"):
        GRPOConfig(group=1)
    with pytest.raises(ValueError, match="extra"):
        GRPOConfig(gruop=8)
    with pytest.raises(ValueError, match="split"):
        GRPOConfig(split="dev")


# ---------------------------------------------------------------------------------------------
# end to end in Chromium: a random tiny policy learns which button to press from rewards alone
# ---------------------------------------------------------------------------------------------
PAGE = """<!doctype html><html><head><style>
body { margin: 0; font: 20px sans-serif; }
button { position: absolute; top: 50px; width: 160px; height: 200px; font-size: 28px; }
#go { left: 20px; background: #2a2; } #no { left: 220px; background: #c22; }
</style></head><body>
<button id="go" onclick="document.body.dataset.done = '1'">GO</button>
<button id="no" onclick="document.body.dataset.wrong = (+(document.body.dataset.wrong || 0) + 1)">NO</button>
</body></html>"""

TASK = """id: two-buttons
instruction: Click the GO button.
start: {page: page.html}
viewport: {width: 400, height: 300}
max_steps: 2
success:
  - js: "document.body.dataset.done === '1'"
"""


class TwoButtons:
    """A one-task suite (picklable: rollout workers are spawned processes)."""

    name = "two-buttons"

    def __init__(self, folder: str):
        self.folder = folder

    def task_ids(self) -> list[str]:
        return ["two-buttons"]

    def default_task_ids(self) -> list[str]:
        return self.task_ids()

    def episode(self, task_id: str, seed: int, split: str = "test"):
        from tasks import load_task_file

        return load_task_file(Path(self.folder) / "task.yaml")

    def oracle(self, task_id: str):
        raise NotImplementedError


@pytest.mark.slow  # ~1-2 min on 2 free cores (5 iterations x 16 episodes, 2 spawned workers)
def test_grpo_in_chromium_improves_success(tmp_path):
    from agent.cli_train_grpo import run_grpo

    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "page.html").write_text(PAGE)
    (tmp_path / "suite" / "task.yaml").write_text(TASK)
    tok, ids = tiny_tokenizer()
    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    tok.save(tok_dir / "tokenizer.json")
    cfg = GRPOConfig(group=8, iterations=5, seeds_per_task=2, beta=0.01, lr=1e-2, max_new_tokens=1,
                     allowed_tokens=ids, minibatches=2, format_reward=0.0, seed=0)
    out = tmp_path / "grpo"
    seen, errors = [], []
    result = run_grpo(TwoButtons(str(tmp_path / "suite")), out, tokenizer=str(tok_dir), preset="tiny", cfg=cfg,
                      workers=2, on_iteration=seen.append, episode_timeout_s=120,
                      on_rollout=lambda r: r.error and errors.append((r.iteration, r.sample, r.error)))
    logs = result.logs
    assert not errors
    assert len(logs) == 5 and seen == logs and all(l.errors == 0 and l.episodes == 16 for l in logs)
    print("success by iteration:", [round(l.success, 2) for l in logs], "kl:", [round(l.kl, 4) for l in logs],
          "ep/min:", [round(l.episodes_per_min) for l in logs])
    assert logs[0].first_ratio_dev < 1e-3  # rollout workers and learner compute the same pi_old
    assert logs[-1].success > logs[0].success + 0.2
    assert logs[-1].success >= 0.8
    # the JSONL log, the checkpoint (a plain MoE policy directory) and the resume state
    lines = [json.loads(x) for x in (out / "grpo.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in lines] == [0, 1, 2, 3, 4]
    assert {"mean_reward", "success", "kl", "clip_frac", "routing_max_over_mean", "episodes_per_min",
            "learner_s"} <= set(lines[0])
    assert load_dir(out).model.cfg.vocab_size == random_init(tok).cfg.vocab_size
    state = json.loads((out / "train_state" / "state.json").read_text())
    assert state["iteration"] == 5 and state["kind"] == "grpo"
    # resuming with the same settings continues; with other settings it refuses
    more = run_grpo(TwoButtons(str(tmp_path / "suite")), out, cfg=cfg.model_copy(update={"iterations": 6}),
                    workers=0, resume=True)
    assert [l.iteration for l in more.logs] == [5]
    with pytest.raises(ConfigError, match="beta"):
        run_grpo(TwoButtons(str(tmp_path / "suite")), out, cfg=cfg.model_copy(update={"iterations": 7, "beta": 0.5}),
                 workers=0, resume=True)
    with pytest.raises(ConfigError, match="already holds"):
        run_grpo(TwoButtons(str(tmp_path / "suite")), out, tokenizer=str(tok_dir), cfg=cfg, workers=0)

