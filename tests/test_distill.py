"""Distillation: the demonstration format round-trips, and a tiny MoE overfits a handful of demos."""
from __future__ import annotations

import json
import random

import pytest
from PIL import Image, ImageDraw

from actions.errors import ConfigError
from perception.observation import Box, Element
from policy.moe import MoEConfig, MoEPolicy, load_dir
from policy.train.data import DemoStep, DemoWriter, load_demos
from policy.train.distill import DemoDataset, epoch_batches, exact_match, focus_subset, lr_at, train_distill

WORDS = ["OK", "Cancel", "Submit", "Next", "Back", "Login", "Save", "Delete", "Yes", "No", "Apply", "Reset"]


def render(width: int, height: int, buttons: list[tuple[str, Box]]) -> Image.Image:
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    for label, b in buttons:
        d.rectangle([b.x, b.y, b.x + b.width, b.y + b.height], fill=(220, 220, 235), outline="black")
        d.text((b.x + 4, b.y + 4), label, fill="black")
    return img


def rel(v: float, extent: float) -> int:
    return round(v / extent * 1000)


def make_demos(out, n_episodes: int = 6, seed: int = 0) -> list[DemoStep]:
    """Two-step episodes on a 160x210 area: click a named button, then type a word and finish."""
    rng = random.Random(seed)
    written = []
    with DemoWriter(out) as w:
        for ep in range(n_episodes):
            W, H = 160, 210
            labels = rng.sample(WORDS, 3)
            boxes = [Box(rng.randint(0, 110), 20 + 60 * i + rng.randint(0, 20), 46, 22) for i in range(3)]
            target_i = rng.randrange(3)
            word = rng.choice(["ada", "bob", "eve", "kim"])
            instruction = f'Click "{labels[target_i]}" then type "{word}".'
            elements = [Element(i, "button", labels[i], boxes[i]) for i in range(3)]
            rec = w.episode(f"ep{ep}", "synthetic:click-type", seed=ep, instruction=instruction)
            cx, cy = boxes[target_i].center
            t1 = f"Thought: Click {labels[target_i]}.\nAction: click(start_box='({rel(cx, W)},{rel(cy, H)})')"
            rec.add(render(W, H, list(zip(labels, boxes))), W, H, t1, elements=elements)
            t2 = f"Thought: Type {word}.\nAction: type(content='{word}')"
            rec.add(render(W, H, list(zip(labels, boxes))), W, H, t2, elements=elements, history=[t1])
            written += rec.end(success=ep != n_episodes - 1)  # the last episode failed
    return written


def test_demo_format_round_trip(tmp_path):
    written = make_demos(tmp_path, n_episodes=2)
    lines = (tmp_path / "steps.jsonl").read_text().splitlines()
    assert len(lines) == 4
    rec = json.loads(lines[1])
    assert rec["image"] == "images/ep0-1.png" and (tmp_path / rec["image"]).is_file()
    assert rec["history"] and rec["success"] is True and rec["elements"][0]["role"] == "button"
    loaded = load_demos(tmp_path)
    assert loaded == written
    assert len(load_demos(tmp_path, only_success=True)) == 2
    assert loaded[0].element_objects()[0].box == written[0].element_objects()[0].box


def test_demo_validation_errors(tmp_path):
    good = make_demos(tmp_path, n_episodes=1)[0].model_dump()
    with pytest.raises(ValueError, match="extra"):
        DemoStep.model_validate({**good, "surprise": 1})
    with pytest.raises(ValueError, match="relative"):
        DemoStep.model_validate({**good, "image": "../etc/passwd"})
    with pytest.raises(ValueError, match="element 0"):
        DemoStep.model_validate({**good, "elements": [{"role": "button"}]})
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "steps.jsonl").write_text(json.dumps({**good, "image": "images/missing.png"}) + "\n")
    with pytest.raises(ConfigError, match="steps.jsonl:1: image"):
        load_demos(bad)
    (bad / "steps.jsonl").write_text("{not json\n")
    with pytest.raises(ConfigError, match="steps.jsonl:1"):
        load_demos(bad)


def test_tiny_moe_overfits_demos_and_resumes(tmp_path):
    data, out = tmp_path / "data", tmp_path / "model"
    make_demos(data, n_episodes=6)
    cfg = MoEConfig.tiny(seq_aux_alpha=1e-3, bias_update_speed=1e-2)
    res = train_distill(data, out, cfg, steps=120, batch_size=10, lr=3e-3, warmup=10, save_every=60,
                        vocab_size=1400, progress=False, num_threads=1)
    assert res.n_examples == 10 and res.skipped == 0  # the failed episode is left out
    policy = load_dir(out)
    ds = DemoDataset([(data, s) for s in load_demos(data, only_success=True)], policy.tokenizer, policy.model.cfg)
    assert exact_match(policy.model, policy.tokenizer, ds) == 1.0
    # the policy answers on the relative grid, from an Observation, exactly as demonstrated
    from perception.observation import Observation
    s = ds.items[0][1]
    with Image.open(s.image_path(data)) as im:
        obs = Observation(im.copy(), s.width, s.height, elements=s.element_objects())
    assert isinstance(policy, MoEPolicy)
    assert policy.respond(s.instruction, obs, s.history) == s.target
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 120 and lines[-1]["loss"] < 0.05
    assert all(x["max_over_mean"] > 0 for x in lines if "max_over_mean" in x)
    # resuming continues from the saved step with the saved optimizer state
    # (a resumed run may change the prompt's limits: no weight depends on them)
    res2 = train_distill(data, out, steps=125, batch_size=10, lr=3e-3, warmup=10, resume=True, progress=False,
                         num_threads=1, prompt_limits={"max_instruction_tokens": 40, "max_elements": None})
    assert res2.steps == 125 and res2.final_loss < 0.05
    state = json.loads((out / "train_state" / "state.json").read_text())
    assert state["step"] == 125
    saved = json.loads((out / "config.json").read_text())
    assert saved["max_instruction_tokens"] == 40 and saved["max_elements"] == cfg.max_elements
    with pytest.raises(ConfigError, match="prompt limits"):
        train_distill(data, out, steps=126, resume=True, progress=False, prompt_limits={"d_model": 8})
    # a new run may start from a trained policy: its weights and tokenizer, a fresh optimiser
    ft = tmp_path / "finetuned"
    train_distill(data, ft, steps=1, batch_size=10, lr=1e-9, warmup=1, progress=False, num_threads=1, init=out)
    tuned = load_dir(ft)
    assert exact_match(tuned.model, tuned.tokenizer, ds) == 1.0
    assert json.loads((ft / "train_state" / "state.json").read_text())["step"] == 1
    with pytest.raises(ConfigError, match="no policy in"):
        train_distill(data, tmp_path / "ft2", steps=1, progress=False, init=tmp_path / "nope")


def test_length_buckets_use_each_example_once_and_pad_less():
    rng = random.Random(3)
    lengths = [rng.choice([rng.randint(40, 120), rng.randint(200, 480)]) for _ in range(5000)]
    for bucket in (False, True):
        one = epoch_batches(lengths, 16, seed=1, epoch=0, bucket=bucket)
        assert one == epoch_batches(lengths, 16, seed=1, epoch=0, bucket=bucket)  # resuming repeats it
        assert one != epoch_batches(lengths, 16, seed=1, epoch=1, bucket=bucket)
        flat = [i for b in one for i in b]
        assert len(flat) == len(set(flat)) == 5000 // 16 * 16 and all(len(b) == 16 for b in one)

    def padded(batches):  # tokens a step computes: every row as long as its batch's longest
        return sum(16 * max(lengths[i] for i in b) for b in batches)

    plain = padded(epoch_batches(lengths, 16, 1, 0, bucket=False))
    bucketed = padded(epoch_batches(lengths, 16, 1, 0, bucket=True))
    assert bucketed < 0.75 * plain
    # the buckets are shuffled: long and short batches alternate, not one run of each
    firsts = [max(lengths[i] for i in b) > 160 for b in epoch_batches(lengths, 16, 1, 0, bucket=True)]
    assert sum(a != b for a, b in zip(firsts, firsts[1:])) > len(firsts) // 4


def test_focus_spends_later_epochs_on_what_is_not_learned(tmp_path):
    learned = [i % 4 != 0 for i in range(4000)]  # a quarter not learned
    sub = focus_subset(learned, 0.25, seed=0, epoch=1, batch_size=16)
    assert sub == focus_subset(learned, 0.25, seed=0, epoch=1, batch_size=16)  # resuming repeats it
    assert {i for i in range(4000) if not learned[i]} <= set(sub)
    assert 0.2 * 3000 < sum(learned[i] for i in sub) < 0.3 * 3000
    assert len(focus_subset([True] * 40, 0.01, seed=0, epoch=1, batch_size=16)) == 16  # never under a batch
    data, out = tmp_path / "data", tmp_path / "model"
    make_demos(data, n_episodes=6)
    cfg = MoEConfig.tiny(seq_aux_alpha=1e-3, bias_update_speed=1e-2)
    train_distill(data, out, cfg, steps=200, batch_size=2, lr=3e-3, warmup=10, save_every=100, vocab_size=1400,
                  progress=False, num_threads=1, focus=0.2, log_every=1)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["learned"] == 0.0 and lines[-1]["learned"] == 1.0
    policy = load_dir(out)
    ds = DemoDataset([(data, s) for s in load_demos(data, only_success=True)], policy.tokenizer, policy.model.cfg)
    assert exact_match(policy.model, policy.tokenizer, ds) == 1.0  # learned means greedy decoding reproduces it
    # the first epoch has every example (5 batches); the later ones, fewer: more epochs in the same steps
    steps_in = {}
    for x in lines:
        steps_in[x["epoch"]] = steps_in.get(x["epoch"], 0) + 1
    assert steps_in[0] == 5 and max(steps_in) > 1.5 * 200 / 5
    state = json.loads((out / "train_state" / "state.json").read_text())
    assert state["focus"] == 0.2 and state["focus_epoch"] == lines[-1]["epoch"]
    # a resumed run keeps the focus and what was learned, starting a new epoch
    train_distill(data, out, steps=202, resume=True, progress=False, num_threads=1, log_every=1)
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[len(lines)])
    assert first["step"] == 201 and first["epoch"] == state["focus_epoch"] + 1 and first["learned"] == 1.0
    with pytest.raises(ConfigError, match="focus"):
        train_distill(data, tmp_path / "m2", MoEConfig.tiny(), steps=1, vocab_size=1200, progress=False, focus=0)


def test_a_time_budget_ends_training_and_sets_the_schedule(tmp_path):
    assert lr_at(50, 1000, 1.0, 10, 0.1) > 0.9  # 4% of the steps: hardly decayed
    assert lr_at(50, 1000, 1.0, 10, 0.1, done=1.0) == pytest.approx(0.1)  # the budget spent: fully decayed
    assert lr_at(5, 1000, 1.0, 10, 0.1, done=1.0) == pytest.approx(0.6)  # warm-up goes by steps
    data, out = tmp_path / "data", tmp_path / "model"
    make_demos(data, n_episodes=3)
    res = train_distill(data, out, MoEConfig.tiny(), steps=100_000, batch_size=2, vocab_size=1200,
                        progress=False, num_threads=1, minutes=0.02, save_every=0)
    assert 0 < res.steps < 100_000
    state = json.loads((out / "train_state" / "state.json").read_text())
    assert state["step"] == res.steps and state["minutes"] == 0.02 and state["seconds"] >= 1.2
    assert state["bucket"] is True
    # a resumed run counts the time spent: the budget is gone, nothing more is trained
    again = train_distill(data, out, steps=100_000, resume=True, progress=False, num_threads=1)
    assert again.steps == res.steps
    more = train_distill(data, out, steps=100_000, resume=True, progress=False, num_threads=1, minutes=0.04)
    assert more.steps > res.steps
    with pytest.raises(ConfigError, match="time budget"):
        train_distill(data, tmp_path / "m2", MoEConfig.tiny(), steps=1, vocab_size=1200, progress=False, minutes=-1)
    assert not (tmp_path / "m2").exists()


def test_cli_train_distill(tmp_path):
    from typer.testing import CliRunner

    from agent.cli import app
    make_demos(tmp_path / "data", n_episodes=2)
    r = CliRunner().invoke(app, ["train", "distill", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"),
                                 "--preset", "tiny", "--steps", "3", "--batch-size", "2", "--vocab-size", "1200",
                                 "--threads", "1", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output.strip().splitlines()[-1])
    assert summary["steps"] == 3 and summary["examples"] == 2
    assert isinstance(load_dir(tmp_path / "m"), MoEPolicy)
    r = CliRunner().invoke(app, ["train", "distill", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m2")])
    assert r.exit_code == 2
    # fine-tuning the built-in policy: its config and tokenizer carry over
    r = CliRunner().invoke(app, ["train", "distill", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "ft"),
                                 "--init", "builtin", "--steps", "1", "--batch-size", "2", "--threads", "1", "--json"])
    assert r.exit_code == 0, r.output
    from policy.moe import CHECKPOINT_DIR
    assert (tmp_path / "ft" / "tokenizer.json").read_bytes() == (CHECKPOINT_DIR / "tokenizer.json").read_bytes()
    assert json.loads((tmp_path / "ft" / "config.json").read_text())["d_model"] == \
        json.loads((CHECKPOINT_DIR / "config.json").read_text())["d_model"]


def test_relabel_renames_quoted_labels_consistently():
    from policy.train.relabel import relabel

    rng = random.Random(3)
    elements = [{"role": "button", "text": "Classic list", "value": ""},
                {"role": "textbox", "text": "Website", "value": "classic list"},
                {"role": "text", "text": "Pick the Classicalist or 03/12/2016", "value": ""}]
    history = ["Thought: Scroll.\nAction: scroll(point='(5,5)', direction='down')"]
    target = 'Thought: Click the "Classic list" button.\nAction: click(start_box=\'(191,175)\')'
    instr = 'Activate the "Classic list" button, not "OK", on "03/12/2016".'
    i2, e2, h2, t2 = relabel(instr, elements, history, target, rng)
    new = i2.split('"')[1]
    assert new != "Classic list" and len(new.split()) == 2 and new[0].isupper() and new.split()[1].islower()
    assert t2 == target.replace("Classic list", new) and e2[0]["text"] == new
    assert e2[1]["value"] == new[0].lower() + new[1:]  # another case of the same words, renamed alike
    assert e2[2]["text"] == elements[2]["text"]  # whole words only; dates keep their meaning
    assert '"03/12/2016"' in i2 and i2.split('"')[3] not in ("OK", "") and i2.split('"')[3].isupper()
    assert h2 == history and elements[0]["text"] == "Classic list"  # the inputs are not modified
    assert relabel("Scroll down.", elements, history, target, rng) == ("Scroll down.", elements, history, target)


def test_relabel_renames_capitalised_names_whatever_the_step():
    from policy.train.relabel import relabel

    rng = random.Random(1)
    elements = [{"role": "text", "text": "Select Jordanna>Lonee", "value": ""},
                {"role": "menuitem", "text": "Jordanna", "value": ""}, {"role": "combobox", "text": "", "value": "Lonee"}]
    target = 'Thought: Hover "Jordanna" to open its submenu on the way to "Lonee".\nAction: hover(start_box=\'(1,2)\')'
    i2, e2, _, t2 = relabel("Select Jordanna>Lonee", elements, [], target, rng)
    a, b = i2.removeprefix("Select ").split(">")  # a sentence's first word keeps its meaning
    assert a != "Jordanna" and b != "Lonee" and a[0].isupper() and b[0].isupper()
    assert e2[1]["text"] == a and e2[2]["value"] == b and e2[0]["text"] == i2 and f'"{a}"' in t2 and f'"{b}"' in t2
    _, e3, _, t3 = relabel("Select Jordanna>Lonee", elements[:1], [], "Thought: Done.", random.Random(1))
    assert e3[0]["text"] == i2 and t3 == "Thought: Done."  # renamed alike when no element or target shows it
    keep = "Select June, similar and press Submit. Use Monday."  # months, weekdays, lower-case words, sentences
    assert relabel(keep, [], [], "", rng)[0].startswith("Select June, similar and press ")
    assert relabel(keep, [], [], "", rng)[0].endswith(". Use Monday.")


def test_dataset_relabel_is_deterministic_and_trains(tmp_path):
    data = tmp_path / "data"
    make_demos(data, n_episodes=4)
    cfg = MoEConfig.tiny()
    res = train_distill(data, tmp_path / "m", cfg, steps=4, batch_size=3, vocab_size=1300, progress=False,
                        num_threads=1, relabel_p=1.0)
    assert res.steps == 4
    policy = load_dir(tmp_path / "m")
    ds = DemoDataset([(data, s) for s in load_demos(data, only_success=True)], policy.tokenizer, policy.model.cfg)
    p0, t0 = ds.example(0)
    p1, t1 = ds.example(0, relabel_p=1.0, salt=5)
    p2, t2 = ds.example(0, relabel_p=1.0, salt=5)
    assert (p1.tokens, t1) == (p2.tokens, t2) and t1 != t0 and p1.tokens != p0.tokens
    assert p1.image is p0.image  # the screenshot is shared, not re-read
    text = policy.tokenizer.decode(t1)
    assert "Click" in text and ds.items[0][1].instruction.split('"')[1] not in text


def test_a_stuck_greedy_policy_samples_another_action(tmp_path):
    """Taught two equally good answers for one screen, greedy decoding picks one. When the loop says
    that action keeps failing, the policy draws samples and takes the other."""
    from actions import format_step
    from perception.observation import Observation
    from policy.base import STUCK_WARNING, HistoryEntry

    W, H = 160, 210
    labels, boxes = ["OK", "Save"], [Box(10, 30, 46, 22), Box(90, 140, 46, 22)]
    image = render(W, H, list(zip(labels, boxes)))
    elements = [Element(i, "button", labels[i], boxes[i]) for i in range(2)]
    answers = [f"Thought: Click {label}.\nAction: click(start_box='({rel(b.center[0], W)},{rel(b.center[1], H)})')"
               for label, b in zip(labels, boxes)]
    with DemoWriter(tmp_path / "data") as w:
        for ep in range(8):
            rec = w.episode(f"ep{ep}", "synthetic:either", seed=ep, instruction="Press a button.")
            rec.add(image, W, H, answers[ep % 2], elements=elements)
            rec.end(success=True)
    cfg = MoEConfig.tiny(max_history=0)  # the history cannot change the answer: only the feedback does
    train_distill(tmp_path / "data", tmp_path / "model", cfg, steps=150, batch_size=8, lr=3e-3, warmup=10,
                  vocab_size=1400, progress=False, num_threads=1)
    policy = load_dir(tmp_path / "model")
    obs = Observation(image, W, H, elements=elements)
    first = policy.act("Press a button.", obs, [])
    assert policy.last_text in answers
    other = answers[1 - answers.index(policy.last_text)]
    space = policy.coordinate_space(W, H)
    entry = HistoryEntry(index=0, thought=first.thought, actions=first.actions,
                         response=format_step(first.thought, first.actions, space))
    assert policy.act("Press a button.", obs, [entry]) == first  # no warning: greedy as before
    entry.feedback = STUCK_WARNING.format(n=3, how="did not change")
    escaped = policy.act("Press a button.", obs, [entry])
    # the other button: half of the samples start the thought with another word than greedy did,
    # so the thought may read oddly; the action is what must change
    assert escaped.actions != first.actions and policy.last_text.endswith(other.split("\n")[-1])
    assert policy.act("Press a button.", obs, [entry]) == escaped  # seeded by the prompt: reproducible


def test_a_click_at_a_name_not_on_screen_is_sampled_again(tmp_path):
    """Taught to click "Gone" (which no element carries) more often than "Save", greedy decoding
    clicks at "Gone"; with verification on, the policy samples and takes the "Save" click."""
    from perception.observation import Observation

    W, H = 160, 210
    labels, boxes = ["OK", "Save"], [Box(10, 30, 46, 22), Box(90, 140, 46, 22)]
    image = render(W, H, list(zip(labels, boxes)))
    elements = [Element(i, "button", labels[i], boxes[i]) for i in range(2)]
    gone = f"Thought: Click \"Gone\".\nAction: click(start_box='({rel(boxes[0].center[0], W)},{rel(boxes[0].center[1], H)})')"
    save = f"Thought: Click \"Save\".\nAction: click(start_box='({rel(boxes[1].center[0], W)},{rel(boxes[1].center[1], H)})')"
    task = 'Press "Gone" or "Save".'
    with DemoWriter(tmp_path / "data") as w:
        for ep in range(8):
            rec = w.episode(f"ep{ep}", "synthetic:either", seed=ep, instruction=task)
            rec.add(image, W, H, gone if ep % 8 < 5 else save, elements=elements)
            rec.end(success=True)
    train_distill(tmp_path / "data", tmp_path / "model", MoEConfig.tiny(max_history=0), steps=150, batch_size=8,
                  lr=3e-3, warmup=10, vocab_size=1400, progress=False, num_threads=1)
    obs = Observation(image, W, H, elements=elements)
    plain = load_dir(tmp_path / "model", verify=False)
    assert plain.act(task, obs, []).thought == 'Click "Gone".' and plain.last_text == gone
    policy = load_dir(tmp_path / "model")
    step = policy.act(task, obs, [])
    assert policy.last_text.startswith('Thought: Click "Save".') and step.thought == 'Click "Save".'
    assert boxes[1].contains(step.actions[0].point.x, step.actions[0].point.y)  # a sampled point, grounded
    assert policy.act(task, obs, []) == step  # seeded by the prompt: reproducible
