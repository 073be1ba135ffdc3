"""Benchmark the built-in MoE policy on this CPU.

    .venv/bin/python bench/moe.py            # a rich table
    .venv/bin/python bench/moe.py --json     # one JSON object on the last line

Measures (default config unless --tiny):
  * tokens/s of one MoE block vs dense SwiGLU blocks of equal *active* and equal *total* FFN
    parameters (forward, and forward+backward);
  * training samples/s (forward + backward + AdamW on realistic prompts);
  * milliseconds per policy step (encode the observation + generate N tokens with the KV cache),
    for a MiniWoB-sized and a desktop-sized screen.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from perception.observation import Box, Element  # noqa: E402
from policy.moe.config import MoEConfig  # noqa: E402
from policy.moe.generate import generate  # noqa: E402
from policy.moe.model import Block, MoEModel  # noqa: E402
from policy.moe.prompt import collate, encode_observation, encode_target  # noqa: E402
from policy.moe.tokenizer import GalagoTokenizer  # noqa: E402
from policy.train.distill import config_preset, make_optimizer  # noqa: E402

WORDS = "OK Cancel Submit Next Back Login Save Delete Apply Reset Search Home Profile Settings Name Email".split()
TARGET = "Thought: Click the Submit button.\nAction: click(start_box='(512,300)')"


def _timeit(fn, reps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def screen(w: int, h: int, n: int, rng: random.Random) -> tuple[Image.Image, list[Element]]:
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    els = []
    for i in range(n):
        bw, bh = rng.randint(30, 120), rng.randint(14, 30)
        x, y = rng.randint(0, max(1, w - bw)), rng.randint(0, max(1, h - bh))
        label = " ".join(rng.sample(WORDS, rng.randint(1, 2)))
        d.rectangle([x, y, x + bw, y + bh], outline="black")
        d.text((x + 2, y + 2), label, fill="black")
        els.append(Element(i, rng.choice(["button", "link", "textbox", "checkbox"]), label, Box(x, y, bw, bh)))
    return img, els


def block_throughput(cfg: MoEConfig, batch: int, seq: int, reps: int) -> list[dict]:
    active_hidden = (cfg.top_k + cfg.n_shared) * cfg.d_expert
    total_hidden = (cfg.n_routed + cfg.n_shared) * cfg.d_expert
    blocks = {"moe": Block(cfg, 1, moe=True), f"dense (equal active, d_ff={active_hidden})": Block(cfg, 1, False, active_hidden),
              f"dense (equal total, d_ff={total_hidden})": Block(cfg, 1, False, total_hidden)}
    x = torch.randn(batch, seq, cfg.d_model)
    pos = torch.arange(seq)[None].expand(batch, -1)
    from policy.moe.model import rope_tables
    rope = rope_tables(cfg.head_dim, seq, cfg.rope_theta)[pos][:, :, None, None]
    rows = []
    for name, blk in blocks.items():
        params = sum(p.numel() for p in blk.ffn.parameters())
        with torch.inference_mode():
            fwd = _timeit(lambda: blk(x, rope, None, True), reps)
        xg = x.clone().requires_grad_()

        def step():
            blk(xg, rope, None, True).sum().backward()
        fb = _timeit(step, reps)
        n = batch * seq
        rows.append({"block": name, "ffn_params": params, "fwd_tokens_per_s": n / statistics.median(fwd),
                     "fwd_bwd_tokens_per_s": n / statistics.median(fb)})
    return rows


def train_throughput(model: MoEModel, tok: GalagoTokenizer, batch: int, reps: int) -> dict:
    rng = random.Random(0)
    prompts, targets = [], []
    for i in range(batch):
        img, els = screen(160, 210, rng.randint(6, 16), rng)
        prompts.append(encode_observation(tok, model.cfg, "Click the Submit button then type ada", img, 160, 210,
                                          els, [TARGET] * rng.randint(0, 2)))
        targets.append(encode_target(tok, TARGET))
    b, labels = collate(prompts, targets)
    opt = make_optimizer(model, 1e-4, 0.1)
    model.train()

    def step():
        logits, lab, aux = model(b, labels)
        loss = torch.nn.functional.cross_entropy(logits, lab) + aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        model.update_router_bias()
    t = _timeit(step, reps, warmup=1)
    model.eval()
    return {"batch": batch, "mean_seq_len": float(b.mask.sum(1).float().mean()) + model.cfg.n_patches,
            "samples_per_s": batch / statistics.median(t), "s_per_step": statistics.median(t)}


def policy_step_ms(model: MoEModel, tok: GalagoTokenizer, w: int, h: int, n_el: int, new_tokens: int,
                   reps: int) -> dict:
    rng = random.Random(1)
    img, els = screen(w, h, n_el, rng)
    hist = [TARGET, TARGET]
    lengths = []

    cpu = []

    def step():
        c = time.process_time()
        p = encode_observation(tok, model.cfg, "Click the Submit button", img, w, h, els, hist)
        lengths.append(len(p) + model.cfg.n_patches)
        generate(model, [p], new_tokens, stop_at_eos=False, decode_threads=1)
        cpu.append((time.process_time() - c) * 1000)
    t = [x * 1000 for x in _timeit(step, reps)]
    enc = _timeit(lambda: encode_observation(tok, model.cfg, "Click the Submit button", img, w, h, els, hist), reps)
    return {"screen": f"{w}x{h}", "elements": n_el, "prompt_tokens": lengths[-1], "new_tokens": new_tokens,
            "median_ms": statistics.median(t), "p90_ms": sorted(t)[int(0.9 * (len(t) - 1))],
            "median_cpu_ms": statistics.median(cpu[-reps:]),  # process CPU time (both threads)
            "encode_ms": statistics.median(enc) * 1000}


def trained_policy_ms(spec: str, data: Path, steps: int, **options) -> dict:
    """Wall ms of ``policy.act`` (encode + generate to <|eos|> + parse) on recorded observations;
    ``options`` go to the policy (``verify=False``)."""
    import policy as policies
    from perception.observation import Observation
    from policy.train.data import load_demos

    pol = policies.load(spec if spec == "builtin" or ":" in spec else f"moe:{spec}", **options)
    demos = load_demos(data)[:steps]
    times, tokens = [], []
    for d in demos:
        with Image.open(d.image_path(data)) as im:
            obs = Observation(screenshot=im.convert("RGB"), width=d.width, height=d.height,
                              elements=d.element_objects())
        t = time.perf_counter()
        try:
            pol.act(d.instruction, obs, [])
        except Exception:  # a parse error still cost a whole step
            pass
        times.append((time.perf_counter() - t) * 1000)
        tokens.append(len(pol.last.tokens[0]))
    times.sort()
    return {"policy": spec, "steps": len(times), "median_ms": statistics.median(times),
            "p90_ms": times[int(0.9 * (len(times) - 1))], "median_tokens": statistics.median(tokens)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--tiny", action="store_true", help="benchmark MoEConfig.tiny() instead of the default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--new-tokens", type=int, default=24, help="tokens generated per policy step")
    ap.add_argument("--batch", type=int, default=16, help="training batch size")
    ap.add_argument("--policy", default=None, help="also time a trained policy (builtin or a MoE directory) "
                                                   "answering real recorded observations (--data)")
    ap.add_argument("--data", type=Path, default=None, help="a `galago collect` folder for --policy")
    ap.add_argument("--steps", type=int, default=50, help="recorded observations to answer with --policy")
    ap.add_argument("--no-verify", action="store_true", help="--policy without verification's resampling")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = MoEConfig.tiny() if args.tiny else config_preset("default")
    tok = GalagoTokenizer.train([TARGET, *WORDS, "Click the Submit button then type ada", "button link textbox"] * 3,
                                vocab_size=min(cfg.vocab_size, 1500))
    model = MoEModel(cfg).eval()
    counts = model.num_params()
    import os
    res = {"config": "tiny" if args.tiny else "default", "threads": args.threads,
           "load_avg_1min": os.getloadavg()[0],  # timings are only meaningful on an idle machine
           "params_total": counts["total"], "params_active": counts["active"],
           "checkpoint_mb": counts["total"] * 4 / 2 ** 20,
           "blocks": block_throughput(cfg, 8, 256, args.reps),
           "train": train_throughput(model, tok, args.batch, max(3, args.reps // 3)),
           "policy_step": [policy_step_ms(model, tok, 160, 210, 12, args.new_tokens, args.reps),
                           policy_step_ms(model, tok, 1280, 800, 32, args.new_tokens, args.reps)]}
    if args.policy and args.data:
        res["trained_policy"] = trained_policy_ms(args.policy, args.data, args.steps,
                                                  **({"verify": False} if args.no_verify else {}))
    if args.json:
        print(json.dumps(res))
        return res
    from rich.console import Console
    from rich.table import Table
    con = Console()
    con.print(f"[bold]MoE policy[/] ({res['config']}): {counts['total'] / 1e6:.2f}M params, "
              f"{counts['active'] / 1e6:.2f}M active, checkpoint {res['checkpoint_mb']:.1f} MB, {args.threads} threads, "
              f"load average {res['load_avg_1min']:.1f}")
    t = Table(title="FFN block, batch 8 x 256 tokens")
    for c in ("block", "FFN params", "fwd tokens/s", "fwd+bwd tokens/s"):
        t.add_column(c)
    for r in res["blocks"]:
        t.add_row(r["block"], f"{r['ffn_params']:,}", f"{r['fwd_tokens_per_s']:,.0f}", f"{r['fwd_bwd_tokens_per_s']:,.0f}")
    con.print(t)
    tr = res["train"]
    con.print(f"training: {tr['samples_per_s']:.1f} samples/s (batch {tr['batch']}, ~{tr['mean_seq_len']:.0f} tokens/sample, "
              f"{tr['s_per_step']:.2f} s/step)")
    t = Table(title=f"policy step (encode + {args.new_tokens} generated tokens, KV cache)")
    for c in ("screen", "elements", "prompt tokens", "median ms", "p90 ms", "CPU ms", "encode ms"):
        t.add_column(c)
    for r in res["policy_step"]:
        t.add_row(r["screen"], str(r["elements"]), str(r["prompt_tokens"]), f"{r['median_ms']:.1f}",
                  f"{r['p90_ms']:.1f}", f"{r['median_cpu_ms']:.1f}", f"{r['encode_ms']:.1f}")
    con.print(t)
    if "trained_policy" in res:
        r = res["trained_policy"]
        con.print(f"trained policy {r['policy']} on {r['steps']} recorded observations of {args.data}: "
                  f"median {r['median_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms per step, "
                  f"{r['median_tokens']:.0f} tokens generated (median)")
    return res


if __name__ == "__main__":
    main()
