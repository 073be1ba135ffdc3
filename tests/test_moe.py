"""The built-in MoE policy: routing, balancing, tokenizer, save/load, generation equivalences."""
from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
import torch
from PIL import Image, ImageDraw
from tokenizers import Tokenizer

from actions.errors import ActionParseError, ConfigError
from perception.observation import Box, Element, Observation
from policy.moe import (MoEConfig, MoEModel, MoEPolicy, GalagoTokenizer, build_model, encode_observation,
                        from_pretrained, generate, load_builtin, load_dir, save_pretrained, sequence_logprobs)
from policy.moe.model import MoE
from policy.moe.prompt import collate, encode_target, names
from policy.moe.tokenizer import DIGITS_MARKER, EOS, RULE_TOKENS

torch.set_num_threads(1)  # tiny matrices: one thread is as fast and avoids fighting other tests

TEXTS = ["Thought: Click the Submit button.\nAction: click(start_box='(512,300)')",
         "Thought: Type the name.\nAction: type(content='ada')", 'Log in as "ada" with password "lovelace".',
         "button", "Submit", "textbox", "Username", "Click OK then Cancel", "link Home"] * 4


COPY_WORDS = ["maple", "harbor", "violet", "ember", "canyon", "quartz", "willow", "falcon", "meadow", "copper",
              "lantern", "pebble", "thistle", "saffron", "glacier", "orchid"]


@pytest.fixture(scope="module")
def tok() -> GalagoTokenizer:
    return GalagoTokenizer.train(TEXTS, vocab_size=1300)


def sharp(model: MoEModel, seed: int = 0) -> MoEModel:
    """Re-draw the weights with a larger scale so a random model emits varied tokens (equivalence
    tests are vacuous when every step emits the same token; an untied head helps there too)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / math.sqrt(p.shape[-1])))
        model.tok_emb.weight.mul_(0.3)
        for m in model.moe_layers():
            m.gate.bias.copy_(torch.randn(m.gate.bias.shape, generator=g) * 0.1)
    return model.eval()


def screenshot(w=160, h=210, label="OK") -> Image.Image:
    img = Image.new("RGB", (w, h), "white")
    ImageDraw.Draw(img).rectangle([20, 30, 80, 60], fill=(200, 200, 240))
    ImageDraw.Draw(img).text((25, 35), label, fill="black")
    return img


def elements(n=4) -> list[Element]:
    return [Element(i, "button", ["OK", "Cancel", "Submit", "Zorblax"][i % 4], Box(10 + 30 * i, 20 + 40 * i, 40, 20))
            for i in range(n)]


def prompts(tok, cfg):
    return [encode_observation(tok, cfg, "Click the Submit button", screenshot(), 160, 210, elements(4),
                               ["Thought: x\nAction: click(start_box='(10,20)')"]),
            encode_observation(tok, cfg, "Type ada", screenshot(320, 400, "Cancel"), 320, 400, elements(1), []),
            encode_observation(tok, cfg, "Log in as ada", screenshot(), 160, 210, elements(3), [])]


# ---------------------------------------------------------------------------------------------
# routing
# ---------------------------------------------------------------------------------------------
def moe_layer(**kw) -> MoE:
    torch.manual_seed(0)
    cfg = MoEConfig.tiny(**kw)
    m = MoE(cfg, layer=1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.Linear):
            torch.nn.init.normal_(mod.weight, std=0.2)
    torch.nn.init.normal_(m.gate.weight, std=0.5)
    return m


@pytest.mark.parametrize("score_func,route_scale", [("sigmoid", 1.0), ("sigmoid", 2.5), ("softmax", 1.0)])
def test_gates_sum_to_route_scale(score_func, route_scale):
    m = moe_layer(score_func=score_func, route_scale=route_scale)
    w, idx, scores, _ = m.gate(torch.randn(50, 64))
    assert w.dtype == torch.float32 and idx.shape == (50, 2)
    torch.testing.assert_close(w.sum(-1), torch.full((50,), route_scale))
    assert (idx[:, 0] != idx[:, 1]).all()


def test_bias_changes_selection_not_gate_weights():
    m = moe_layer()
    x = torch.randn(40, 64)
    w0, idx0, s0, _ = m.gate(x)
    with torch.no_grad():
        m.gate.bias[3] = 10.0  # expert 3 now always selected
    w1, idx1, s1, _ = m.gate(x)
    assert (idx1 == 3).any(-1).all() and not (idx0 == 3).any(-1).all()
    torch.testing.assert_close(s1, s0)  # affinities untouched
    # the weights are the UN-biased scores of the chosen experts, normalised
    expect = s0.gather(1, idx1)
    torch.testing.assert_close(w1, expect / expect.sum(-1, keepdim=True))
    # rows whose selection did not change keep exactly the same weights
    same = (idx0.sort(-1).values == idx1.sort(-1).values).all(-1)
    if same.any():
        torch.testing.assert_close(w1[same].sort(-1).values, w0[same].sort(-1).values)


def test_bias_gets_no_gradient(tok):
    model = build_model(MoEConfig.tiny(), tok).train()
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.endswith("gate.bias") for n in names)
    assert any(n.endswith("gate.bias") for n in model.state_dict())  # but it is saved
    batch, labels = collate(prompts(tok, model.cfg)[:2], [encode_target(tok, TEXTS[0])] * 2)
    logits, lab, aux = model(batch, labels)
    (torch.nn.functional.cross_entropy(logits, lab) + aux).backward()
    for m in model.moe_layers():
        assert m.gate.bias.grad is None and not m.gate.bias.requires_grad
        assert m.gate.weight.grad is not None and m.gate.weight.grad.abs().sum() > 0
    assert aux.item() > 0


def skewed_inputs(n=512, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 64, generator=g) + 2.0  # a shared offset: the router prefers a few experts


def test_bias_update_balances_skewed_load():
    def run(update: bool) -> tuple[float, float]:
        m = moe_layer(n_routed=8, bias_update_speed=0.015).eval()
        torch.nn.init.normal_(m.gate.weight, std=0.1)
        first = None
        for step in range(200):
            if step in (1, 90):
                m.reset_stats()  # the final load is measured over the last 10 steps
            with torch.no_grad():
                m(skewed_inputs(256, seed=step))
            if first is None:
                first = m.stats().max_over_mean
            if update:
                m.update_bias()
        return first, m.stats().max_over_mean
    start, end = run(update=True)
    _, collapsed = run(update=False)
    assert start > 2.5  # the router prefers a few experts
    assert collapsed > 2.5  # and keeps doing so without the bias
    assert end < 1.3  # the sign rule brings max/mean load toward 1


def test_frozen_bias_does_not_move():
    m = moe_layer()
    m.gate.bias_frozen = True
    with torch.no_grad():
        m(skewed_inputs())
    m.update_bias()
    assert m.gate.bias.abs().sum() == 0 and m.load_step.sum() == 0


def test_dropless_routes_every_token_and_matches_reference():
    m = moe_layer().eval()
    x = torch.randn(3, 7, 64)
    with torch.no_grad():
        y = m(x)
        st = m.stats()
        assert st.dropped == 0 and sum(st.load) == 3 * 7 * 2 and st.tokens == 21
        flat = x.reshape(-1, 64)
        w, idx, _, _ = m.gate(flat)
        ref = torch.stack([sum(w[n, k] * m.experts[int(idx[n, k])](flat[n]) for k in range(2)) + m.shared(flat[n])
                           for n in range(21)])
    torch.testing.assert_close(y.reshape(-1, 64), ref, rtol=1e-5, atol=1e-5)


def test_capacity_drops_exactly_the_overflow():
    m = moe_layer(capacity_factor=1.0).eval()
    x = skewed_inputs(64).reshape(4, 16, 64)
    with torch.no_grad():
        m(x)
        _, idx, _, _ = m.gate(x.reshape(-1, 64))
    cap = math.ceil(64 * 2 / 4)
    counts = torch.bincount(idx.reshape(-1), minlength=4)
    assert m.stats().dropped == int((counts - cap).clamp(min=0).sum()) > 0


def test_switch_aux_is_alpha_when_balanced():
    cfg = MoEConfig.tiny(balance="switch_aux", switch_aux_alpha=0.01, n_routed=4, top_k=1, score_func="softmax")
    m = MoE(cfg, 1).train()
    with torch.no_grad():
        m.gate.weight.zero_()
        m.gate.weight[torch.arange(4), torch.arange(4)] = 5.0
    x = torch.zeros(1, 4, 64)
    x[0, torch.arange(4), torch.arange(4)] = 1.0  # token i -> expert i: perfectly balanced
    m(x.requires_grad_())
    f_p = m.aux_loss.item()
    # P_i is each expert's mean probability; with one-hot-ish routing it is 1/4 each -> N * sum f P = 1
    assert f_p == pytest.approx(0.01, rel=1e-3)


def test_routing_stats_report_dead_experts(tok):
    model = build_model(MoEConfig.tiny(n_routed=4, top_k=1), tok).eval()
    for m in model.moe_layers():
        with torch.no_grad():
            m.gate.bias.copy_(torch.tensor([5.0, 0.0, 0.0, 0.0]))  # expert 0 takes everything
    generate(model, prompts(tok, model.cfg)[:1], max_new_tokens=3)
    st = model.routing_stats()
    assert st and all(s.dead == 3 and s.max_over_mean == pytest.approx(4.0) for s in st)


# ---------------------------------------------------------------------------------------------
# tokenizer, prompt, config
# ---------------------------------------------------------------------------------------------
def test_tokenizer_round_trip_and_number_tokens(tok, tmp_path):
    for s in TEXTS[:3] + ["Enter 42, 3.14, 2024, 007 and x1 (0,1000) 🙂 ünï", "type(content='a\\'b\\n')"]:
        assert tok.decode(tok.encode(s)) == s
    ids = tok.encode("click(start_box='(512,300)')")
    assert tok.num_id(512) in ids and tok.num_id(300) in ids
    assert tok.encode_label("ada") == tok.encode('"ada"')[2:-1]  # labels tokenise the same inside quotes
    tok.save(tmp_path / "tokenizer.json")
    assert GalagoTokenizer.load(tmp_path / "tokenizer.json").encode(TEXTS[0]) == tok.encode(TEXTS[0])
    with pytest.raises(ConfigError):
        GalagoTokenizer.load(tmp_path / "missing.json")


def _first_rules(tok: GalagoTokenizer) -> GalagoTokenizer:
    """``tok`` as the first tokenizers were: without the rule tokens <|digits|> and <|sp|>."""
    spec = json.loads(tok.tok.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] not in RULE_TOKENS]
    return GalagoTokenizer(Tokenizer.from_str(json.dumps(spec)))


def test_numbers_tokenise_the_same_wherever_they_occur(tok):
    """A value in the instruction and the same value in a thought or typed into a field share their
    tokens, whatever surrounds them, so reproducing it is a copy."""
    def nums(text):
        return [i - tok.num_id(0) for i in tok.encode(text) if tok.num_id(0) <= i <= tok.num_id(1000)]
    assert tok.digits
    assert nums("Select 12/13/2016 as the date") == [12, 13, 2, 0, 1, 6]
    assert nums("click day 13.") == [13] and nums("(13)") == [13] and nums("x13y") == [13]
    assert nums("type(content='02/05/2014')") == [0, 2, 0, 5, 2, 0, 1, 4] == nums("Enter 02/05/2014 as the date")
    assert nums("02:53P") == [0, 2, 53] and nums("2:53 PM") == [2, 53] and nums("1001 1000") == [1, 0, 0, 1, 1000]
    for s in ["12/13/2016.", "v1.25-rc3 007", "0253P", "１２"]:  # fullwidth digits are text, not numbers
        assert tok.decode(tok.encode(s)) == s


def test_a_name_tokenises_the_same_quoted_unquoted_and_on_screen(tok):
    """The words of a name are the same tokens after a space, after an opening quote, inside
    type(content='...') and in an element's label, so copying it is exact from any of them."""
    for t in (tok, _first_rules(tok)):
        name = t.encode(" Northern beacon")
        found = [any(ids[i:i + len(name)] == name for i in range(len(ids))) for ids in map(t.encode, [
            'Under Northern beacon, toggle it', 'Click the "Northern beacon" tab.', "type(content='Northern beacon')"])]
        assert found == ([True] * 3 if t is tok else [True, False, False])  # the first rule: only unquoted
    assert tok.encode_label("Northern beacon") == name
    for s in ['Click "Northern beacon"', "type(content='x') don't 'Tis", "'a'b' \"", '"3 items"']:
        assert tok.decode(tok.encode(s)) == s


def test_first_rule_tokenizers_keep_their_rules_until_upgraded(tok):
    old = _first_rules(tok)
    assert not old.digits and not old.quote_space and old.vocab_size == tok.vocab_size - 2
    ids = old.encode("day 13. in 2016")
    assert old.num_id(13) not in ids and old.num_id(2) not in ids  # the first rule: BPE cut these
    assert old.encode_label("ada") == old.encode('"ada"')[1:-1] == old.encode("ada")
    assert old.encode("(512,300)") == tok.encode("(512,300)")
    new = old.upgraded()
    assert new.digits and new.quote_space and new.upgraded() is new
    for s in ["day 13. in 2016", 'Click "Northern beacon"']:
        assert new.encode(s) == tok.encode(s)
    assert new.tok.get_vocab() == {**old.tok.get_vocab(), **{t: old.vocab_size + i for i, t in enumerate(RULE_TOKENS)}}
    assert new.decode(new.encode("in 2016") + [new.tok.token_to_id(DIGITS_MARKER)]) == "in 2016"


def test_prompt_puts_element_centres_on_the_relative_grid(tok):
    cfg = MoEConfig.tiny()
    e = Element(0, "button", "OK", Box(40, 100, 20, 10))  # centre (50, 105) of 200x300 -> (250, 350)
    p = encode_observation(tok, cfg, "Click OK", None, 200, 300, [e], [])
    i = p.tokens.index(5)  # <|el|>
    assert p.tokens[i + 1:i + 3] == [tok.num_id(250), tok.num_id(350)]
    assert p.boxes[i] == pytest.approx((0.2, 1 / 3, 0.3, 110 / 300)) and p.box_mask[i]
    assert p.image.shape == (3, cfg.image_size, cfg.image_size) and p.image.sum() == 0  # blank
    # coords_last: the same tokens, the centre after the role and the label, still inside the group
    p3 = encode_observation(tok, MoEConfig.tiny(coords_last=True), "Click OK", None, 200, 300, [e], [])
    j = p3.tokens.index(5)
    group = [t for t, b in zip(p3.tokens[j:], p3.box_mask[j:]) if b][:p.box_mask.count(True)]
    assert group[-2:] == [tok.num_id(250), tok.num_id(350)] and group[1:-2] == p.tokens[i + 3:i + len(group)]
    assert sorted(p3.tokens) == sorted(p.tokens)
    p2 = encode_observation(tok, cfg, "Click OK", None, 200, 300, [e], [], no_elements=True)
    assert 5 not in p2.tokens
    with pytest.raises(ValueError):
        encode_observation(tok, cfg, "x", None, 0, 300)


def test_names_matches_whole_words_case_blind_for_text_and_exactly_for_values():
    instr = 'Select Fay from the list, type "Ab 3" and click Submit.'
    assert names(instr, "Fay") and names(instr, "fay") and names(instr, "submit") and names(instr, "Ab 3")
    assert not names(instr, "Fa") and not names(instr, "ay") and not names(instr, "3 a")  # whole words only
    assert names(instr, "Ab 3", exact=True) and not names(instr, "ab 3", exact=True)  # a typed value as typed
    assert not names(instr, "") and not names(instr, None) and not names(instr, "   ")
    assert not names(instr, instr.upper())  # the instruction's own text is not an element it names
    assert not names("Click " + "x" * 70, "x" * 70)  # nor is a long text


def test_mark_named_puts_the_word_after_the_role_of_each_named_element(tok):
    els = [Element(0, "combobox", "", Box(0, 0, 50, 10), value="Fay"),
           Element(1, "button", "Submit", Box(0, 20, 50, 10)),
           Element(2, "link", "Fayette", Box(0, 40, 50, 10))]
    named = tok.encode(" named")
    cfg = MoEConfig.tiny(max_element_tokens=24)  # room for every group's whole text
    plain = encode_observation(tok, cfg, "Select Fay and click Submit", None, 200, 300, els, [])
    cfg = dataclasses.replace(cfg, mark_named=True)
    p = encode_observation(tok, cfg, "Select Fay and click Submit", None, 200, 300, els, [])
    groups = [p.tokens[i:j] for i, j in zip([i for i, t in enumerate(p.tokens) if t == 5],
                                            [i for i, t in enumerate(p.tokens) if t == 5][1:] + [len(p.tokens) - 1])]
    role = [tok.encode(e.role) for e in els]
    assert [g[3:3 + len(r) + len(named)] == r + named for g, r in zip(groups, role)] == [True, True, False]
    assert len(p.tokens) == len(plain.tokens) + 2 * len(named) and p.box_mask.count(True) > plain.box_mask.count(True)
    # on top of the element's token limit: a long group keeps its last tokens (a value's end, a state flag)
    long = [Element(0, "checkbox", "Send me the weekly digest by email", Box(0, 0, 50, 10), checked=True)]
    instr = "Tick Send me the weekly digest by email"
    short = MoEConfig.tiny(max_element_tokens=6)
    a = encode_observation(tok, short, instr, None, 200, 300, long, []).tokens
    b = encode_observation(tok, dataclasses.replace(short, mark_named=True), instr, None, 200, 300, long, []).tokens
    at = a.index(5) + 3 + len(tok.encode("checkbox"))
    assert b == a[:at] + named + a[at:]
    # the value must match as typed: "fay" is not "Fay"
    q = encode_observation(tok, cfg, "Select fay", None, 200, 300, els[:1], [])
    off = dataclasses.replace(cfg, mark_named=False)
    assert q.tokens == encode_observation(tok, off, "Select fay", None, 200, 300, els[:1], []).tokens


def test_config_validation_and_round_trip(tmp_path):
    with pytest.raises(ConfigError, match="top_k"):
        MoEConfig(top_k=20)
    with pytest.raises(ConfigError, match="unknown"):
        MoEConfig.from_dict({"d_model": 64, "bogus": 1})
    cfg = MoEConfig.tiny(route_scale=2.0)
    cfg.save(tmp_path / "c.json")
    assert MoEConfig.load(tmp_path / "c.json") == cfg


def test_default_config_size(tok):
    model = MoEModel(MoEConfig())
    n = model.num_params()
    assert 2e6 < n["active"] < n["total"] < 12.5e6  # checkpoint (fp32) <= 50 MB


# ---------------------------------------------------------------------------------------------
# save/load and generation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("copy", [False, True])
def test_save_load_identical_outputs(copy, tok, tmp_path):
    model = sharp(build_model(MoEConfig.tiny(), tok))
    ps = prompts(tok, model.cfg)
    save_pretrained(model, tok, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    loaded, tok2 = from_pretrained(tmp_path)
    batch, labels = collate(ps, [encode_target(tok, TEXTS[0])] * 3)
    with torch.no_grad():
        a, _, _ = model(batch, labels)
        b, _, _ = loaded(batch, labels)
    assert torch.equal(a, b)
    assert generate(model, ps, 12).tokens == generate(loaded, ps, 12).tokens
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError):
        from_pretrained(tmp_path)


@pytest.mark.parametrize("copy", [False, True])
def test_kv_cache_generation_equals_recomputation(copy, tok):
    model = sharp(build_model(MoEConfig.tiny(tie_embeddings=False, copy_head=copy), tok))
    ps = prompts(tok, model.cfg)[:1]
    if copy:  # half the mass on copying, with a query that moves with the generated text
        with torch.no_grad():
            model.copy.gate.weight.zero_()
            model.copy.gate.bias.fill_(1.0)
    with_cache = generate(model, ps, 24, stop_at_eos=False)
    without = generate(model, ps, 24, use_cache=False, stop_at_eos=False)
    assert len(set(with_cache.tokens[0])) > 3  # not a degenerate repetition
    assert with_cache.tokens == without.tokens
    torch.testing.assert_close(torch.tensor(with_cache.logprobs), torch.tensor(without.logprobs), rtol=1e-4, atol=1e-4)


def test_generation_restores_mode_and_threads(tok):
    model = sharp(build_model(MoEConfig.tiny(), tok), seed=3)
    ps = prompts(tok, model.cfg)[:1]
    ref = generate(model.eval(), ps, 12, stop_at_eos=False)
    assert not any(m.training for m in model.modules())  # an eval model stays so
    threads = torch.get_num_threads()
    model.train()
    out = generate(model, ps, 12, stop_at_eos=False, decode_threads=1)
    assert all(m.training for m in model.modules()) and torch.get_num_threads() == threads
    assert out.tokens == ref.tokens  # decoded in eval mode, on one thread: the same tokens


@pytest.mark.parametrize("copy", [False, True])
def test_batched_generation_equals_unbatched(copy, tok):
    model = sharp(build_model(MoEConfig.tiny(tie_embeddings=False, copy_head=copy), tok), seed=1)
    ps = prompts(tok, model.cfg)
    assert len({len(p) for p in ps}) == 3  # different lengths: the batch is padded
    batched = generate(model, ps, 16, stop_at_eos=False)
    for i, p in enumerate(ps):
        single = generate(model, [p], 16, stop_at_eos=False)
        assert batched.tokens[i] == single.tokens[0]
        torch.testing.assert_close(torch.tensor(batched.logprobs[i]), torch.tensor(single.logprobs[0]),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("copy", [False, True])
def test_sequence_logprobs_match_generation(copy, tok):
    model = sharp(build_model(MoEConfig.tiny(tie_embeddings=False, copy_head=copy), tok), seed=2)
    ps = prompts(tok, model.cfg)
    gen = generate(model, ps, 10, temperature=0.8, generator=torch.Generator().manual_seed(0), stop_at_eos=False)
    lp, mask = sequence_logprobs(model, ps, gen.tokens, temperature=0.8)
    assert lp.requires_grad and mask.sum() == sum(len(t) for t in gen.tokens)
    for i, row in enumerate(gen.logprobs):
        torch.testing.assert_close(lp[i, :len(row)].detach(), torch.tensor(row), rtol=1e-4, atol=1e-4)


def test_sampling_is_seeded_and_top_p_tiny_is_greedy(tok):
    model = sharp(build_model(MoEConfig.tiny(tie_embeddings=False), tok), seed=3)
    ps = prompts(tok, model.cfg)
    def sample(seed, **kw):
        return generate(model, ps, 12, temperature=1.0, generator=torch.Generator().manual_seed(seed),
                        stop_at_eos=False, **kw).tokens
    assert sample(0) == sample(0) and sample(0) != sample(1)
    assert sample(5, top_p=1e-6) == generate(model, ps, 12, stop_at_eos=False).tokens


def test_point_grammar_decodes_numbers_where_a_point_goes(tok):
    """A model that prefers an opening fragment, then a word, writes points as numbers under the
    grammar (the constrained choice), reports its own unconstrained log-probabilities, and writes
    nothing parseable without it."""
    from policy.moe.generate import PointGrammar

    model = sharp(build_model(MoEConfig.tiny(tie_embeddings=False), tok), seed=4)
    grammar = PointGrammar.from_tokenizer(tok, model.cfg.vocab_size)
    opener, word = tok.encode("click(start_box='(")[0], tok.encode(" Submit")[-1]
    bias = torch.zeros(model.cfg.vocab_size)
    bias[opener], bias[word] = 30.0, 20.0
    plain = model.logits
    model.logits = lambda h, table=None, source=None: plain(h, table, source) + bias
    ps = prompts(tok, model.cfg)[:1]
    free = generate(model, ps, 6, stop_at_eos=False)
    assert free.tokens[0] == [opener] * 6
    gen = generate(model, ps, 6, stop_at_eos=False, grammar=grammar)
    row = gen.tokens[0]
    assert row[0] == opener and row[2] == grammar.comma and row[4] in grammar.closers
    assert all(8 <= t <= 1008 for t in (row[1], row[3]))  # number tokens
    assert re.fullmatch(r"click\(start_box='\(\d+,\d+\)'.*", tok.decode(row[:5]), re.S)
    lp, _ = sequence_logprobs(model, ps, gen.tokens)
    torch.testing.assert_close(lp[0, :6], torch.tensor(gen.logprobs[0]), rtol=1e-4, atol=1e-4)
    assert gen.logprobs[0][1] < -5  # the number was not the model's own first choice
    sampled = generate(model, ps, 6, temperature=1.0, generator=torch.Generator().manual_seed(0),
                       stop_at_eos=False, grammar=grammar)
    assert sampled.tokens[0][2] == grammar.comma


def test_steer_restricts_the_choice_only_where_the_most_likely_token_is_named(tok):
    model = sharp(build_model(MoEConfig.tiny(tie_embeddings=False), tok), seed=5)
    ps = prompts(tok, model.cfg)[:1]
    free = generate(model, ps, 6, stop_at_eos=False).tokens[0]
    other = next(t for t in range(9, 1000) if t not in free)
    steered = generate(model, ps, 6, stop_at_eos=False,
                       steer=lambda row, ids: ({free[2]}, {other}) if len(ids) == 2 else None)
    assert steered.tokens[0][:3] == free[:2] + [other]
    ignored = generate(model, ps, 6, stop_at_eos=False,
                       steer=lambda row, ids: ({other}, {free[0]}) if len(ids) == 2 else None)
    assert ignored.tokens[0] == free  # the most likely token is not among those named: no change


def test_the_policy_writes_the_state_a_box_has():
    from policy.grounding import box_states

    pol = load_builtin()
    obs = Observation(screenshot(), 160, 210, elements=[
        Element(index=0, role="checkbox", text="Pipeline poll", box=Box(20, 100, 20, 20), checked=True),
        Element(index=1, role="checkbox", text="Payment newsletter", box=Box(20, 140, 20, 20), checked=False)])
    assert box_states(obs)
    steer = pol._steer(obs)
    tick, uncheck = pol.tokenizer.encode(" ticked")[0], pol.tokenizer.encode(" unchecked")[0]
    these, those = steer(0, pol.tokenizer.encode('Thought: "Pipeline poll" is'))
    assert {tick, uncheck} <= set(these) and tick in those and uncheck not in those
    assert list(steer(0, pol.tokenizer.encode('Thought: "Payment newsletter" is'))[1]) == [uncheck]
    assert steer(0, pol.tokenizer.encode('Thought: "Pipeline poll" is ticked;')) is None
    assert load_builtin(verify=False)._steer(obs) is None
    # the month after a date in digits is the date's, boxes on screen or not
    sept, dec = pol.tokenizer.encode(" September")[0], pol.tokenizer.encode(" December")[0]
    these, those = pol._steer(Observation(screenshot(), 160, 210))(0, pol.tokenizer.encode("Thought: 09/20/2016 is"))
    assert dec in these and list(those) == [sept]
    assert steer(0, pol.tokenizer.encode("Thought: 13/20/2016 is")) is None
    cal = "Thought: 09/20/2016 is September 20, 2016; the calendar shows {}"
    go, click, back = (pol.tokenizer.encode(w)[0] for w in (" go", " click", " back"))
    assert list(steer(0, pol.tokenizer.encode(cal.format("September 2016:")))[1]) == [click]
    assert list(steer(0, pol.tokenizer.encode(cal.format("October 2016:")))[1]) == [go]
    assert list(steer(0, pol.tokenizer.encode(cal.format("October 2016: go")))[1]) == [back]


def test_a_quoted_name_stays_a_copy_of_what_the_model_was_shown():
    pol = load_builtin()
    tok = pol.tokenizer
    obs = Observation(screenshot(), 160, 210, instruction="Select 56csZp, 458x6xg, stop and click Submit.", elements=[
        Element(index=0, role="checkbox", text="56csZp", box=Box(6, 55, 20, 13), checked=False),
        Element(index=1, role="checkbox", text="Nicol", box=Box(6, 74, 20, 13), checked=False)])
    steer = pol._steer(obs, obs.instruction)
    x, c, quote = tok.encode("458x6xg")[1], tok.encode("56csZp")[1], tok.encode('"')[0]
    assert tok.decode([x]) == "x" and tok.decode([c]).startswith("c")
    these, those = steer(0, tok.encode('Thought: Check "458'))  # a copy of the task's "458x6xg" so far
    assert c in these and x not in these and quote not in these
    assert x in list(those) and c not in list(those) and quote in list(those)
    these, those = steer(0, tok.encode('Thought: Check "Sub'))  # from a word's start, case folded
    assert {tok.decode([t]) for t in those} - {'"'} and all("mit".startswith(tok.decode([t]).lower()) or t == quote
                                                          for t in those)
    assert steer(0, tok.encode('Thought: "stop" means "Nic')) is None  # a label of the page: the model's choice
    assert steer(0, tok.encode('Thought: click "S')) is None  # a letter is no evidence of copying
    these, _ = steer(0, tok.encode('Thought: Check "458x6xg'))  # a copy to the word's end ends there:
    assert quote not in these and c in these  # closed, not glued to more letters ("458x6xgcs")
    these, _ = steer(0, tok.encode('Thought: Check "stop'))
    assert tok.encode(" and")[-1] not in these  # a space goes on with the next word
    form = Observation(screenshot(), 160, 210, instruction="Search for movies directed by Ball.", elements=[
        Element(index=0, role="textbox", text="Director", box=Box(6, 55, 100, 13))])
    these, _ = pol._steer(form, form.instruction)(0, tok.encode('Thought: Click the "Dire'))  # the task's "directed"
    ctor = tok.encode("ctor")[0]  # (however this tokenizer cuts the name)
    assert "ctor".startswith(tok.decode([ctor])) and ctor not in these  # on to the field's label, "Director"
    assert tok.encode(" field")[-1] in these  # into neither: overridden
    assert steer(0, tok.encode('Thought: Check "458'))  # but a text to type is the step's own:
    assert steer(0, tok.encode('Thought: The field is empty; type "458')) is None
    mail = Observation(screenshot(), 160, 210, instruction="Storm wants the email you got from Sara.", elements=[])
    typing = pol._steer(mail, mail.instruction)
    these, those = typing(0, tok.encode('Thought: Type "St'))  # not closed inside the task's word "Storm"
    assert quote in these and quote not in list(those) and tok.encode('Thought: Type "Storm')[-1] not in these
    assert typing(0, tok.encode('Thought: Type "Storm')) is None  # at the word's end: free
    assert typing(0, tok.encode('Thought: "Sara" is further down; type "S')) is None  # a letter narrows a list
    assert steer(0, tok.encode('Thought: Check "Kicol')) is None  # no copy from its start: left alone
    assert steer(0, tok.encode('Thought: Check "458x6xg"; then')) is None  # outside quotes
    assert steer(0, tok.encode('Thought: Check "458x6xg".\nAction: type(content=\'"45')) is None
    assert load_builtin(copy=False)._steer(obs, obs.instruction)(0, tok.encode('Thought: Check "458')) is None


def test_a_quote_opens_on_a_word_of_the_task_or_a_label_and_a_menu_path_names_its_items():
    pol = load_builtin()
    tok = pol.tokenizer
    sp, quote = tok.tok.token_to_id("<|sp|>"), tok.encode('"')[0]

    def first(name: str) -> int:  # the token of a quoted name's first letters, after <|sp|>
        ids = tok.encode(f'Thought: Click "{name}')
        return ids[ids.index(sp) + 1]
    obs = Observation(screenshot(), 160, 210, instruction="Click the link Nicol.", elements=[
        Element(index=0, role="link", text="Shir", box=Box(6, 55, 40, 13))])
    steer = pol._steer(obs, obs.instruction)
    these, those = steer(0, tok.encode('Thought: Click "') + [sp])
    assert first("Kicol") in these and first("Nicol") not in these and first("Shir") not in these
    assert first("Nicol") in list(those) and first("Kicol") not in list(those) and quote in these  # no empty name
    assert steer(0, tok.encode('Thought: Click the "+" button; type "')) is None  # a text to type: free
    assert load_builtin(copy=False)._steer(obs, obs.instruction)(0, tok.encode('Thought: Click "') + [sp]) is None
    menu = Observation(screenshot(), 160, 210, instruction="Select Marylinda>Nicol", elements=[
        Element(index=0, role="menuitem", text="Marylinda", box=Box(6, 55, 60, 13)),
        Element(index=1, role="menuitem", text="Shir", box=Box(6, 74, 60, 13))])
    steer = pol._steer(menu, menu.instruction)
    these, _ = steer(0, tok.encode('Thought: "') + [sp])  # any item of the path, no other label
    assert first("Shir") in these and first("Marylinda") not in these and first("Nicol") not in these
    these, those = steer(0, tok.encode('Thought: Hover "Marylinda" to open its submenu on the way to "') + [sp])
    assert first("Marylinda") in these and first("Nicol") not in these and first("Nicol") in list(those)
    assert all("nicol".startswith(tok.decode([t]).strip().lower()) for t in those)  # the path's end only
    tags = Observation(screenshot(), 160, 210, instruction='Enter an item that starts with "Ch" and ends with "had".',
                       elements=[Element(index=0, role="clickable", text="Christmas Island", box=Box(6, 80, 120, 13)),
                                 Element(index=1, role="clickable", text="Chad", box=Box(6, 95, 120, 13))])
    picked = tok.encode('Thought: The suggestion that ends with "had" is "Chad')
    q = len(picked) - 1 - picked[::-1].index(quote)
    pick_steer = pol._steer(tags, tags.instruction)
    assert all(picked[k] not in pick_steer(0, picked[:k])[0] for k in range(q + 1, len(picked)))
    wrong = tok.encode('Thought: The suggestion that ends with "had" is "Christmas')
    assert any(wrong[k] in pick_steer(0, wrong[:k])[0] for k in range(q + 1, len(wrong)))  # not a name that passes
    ursula = tok.encode('Thought: Hover "Brandice" to open its submenu on the way to "Ursula"')  # no " Ur" token:
    q = len(ursula) - 1 - ursula[::-1].index(quote)  # its name opens with a lone space after <|sp|>
    short = Observation(screenshot(), 160, 210, instruction="Select Brandice>Ursula", elements=[])
    path_steer = pol._steer(short, short.instruction)
    assert all(ursula[k] not in path_steer(0, ursula[:k])[0] for k in range(q + 1, len(ursula)))


def test_a_verb_first_thought_names_a_box_its_step_changes():
    pol = load_builtin()
    tok = pol.tokenizer
    obs = Observation(screenshot(), 160, 210, instruction="Select zHoZ2I5, 95qA and click Submit.", elements=[
        Element(index=0, role="checkbox", text="zHoZ2I5", box=Box(6, 55, 20, 13), checked=True),
        Element(index=1, role="checkbox", text="95qA", box=Box(6, 74, 20, 13), checked=False),
        Element(index=2, role="checkbox", text="zjAGrn", box=Box(6, 93, 20, 13), checked=True)])
    steer = pol._steer(obs, obs.instruction)
    sp, quote = tok.tok.token_to_id("<|sp|>"), tok.encode('"')[0]
    opening = tok.encode('Thought: Check "')
    these, those = steer(0, opening)  # the one unticked box the task names starts with a digit
    assert sp in these and tok.encode("95")[0] in list(those) and tok.encode("95")[0] not in these
    these, those = steer(0, tok.encode('Thought: Uncheck "'))  # the ticked box it does not name
    assert sp in list(those)
    for text in ('Thought: Uncheck "zjAGrn"', 'Thought: Check "95qA"'):  # the names' own tokens pass
        full = tok.encode(text)
        start = full.index(quote) + 1
        assert all(full[k] not in steer(0, full[:k])[0] for k in range(start, len(full)))
    assert quote in steer(0, tok.encode('Thought: Check "95'))[0]  # "95" is not a whole name yet
    assert quote not in steer(0, tok.encode('Thought: Check "95qA'))[0]
    assert steer(0, tok.encode('Thought: Check "Nope')) is None  # no such box: left to the checks


def test_verification_samples_branch_off_the_greedy_thought():
    from policy.moe.generate import Generation

    pol = load_builtin()
    greedy = pol.tokenizer.encode('Thought: The link "massa" is on this tab; click it.')
    head = pol.tokenizer.encode("Thought: ")
    assert greedy[:len(head)] == head
    pol.last = Generation([greedy], [[0.0] * len(greedy)], [True], [10])
    branch = pol._branch(None, 8)
    assert branch(3, head) is None  # the first half samples freely
    these, those = branch(4, head)  # the second half may not start the thought as greedy did
    assert list(these) == [greedy[len(head)]] and greedy[len(head)] not in those
    assert len(those) == pol.model.cfg.vocab_size - 1
    assert branch(4, greedy[:len(head) + 1]) is None  # only at that one token
    inner = pol._branch(lambda row, ids: ("x", "y"), 8)
    assert inner(0, head) == ("x", "y") and inner(7, greedy) == ("x", "y")  # other steering kept


# ---------------------------------------------------------------------------------------------
# the policy
# ---------------------------------------------------------------------------------------------
def test_policy_space_act_and_ablation(tok, tmp_path):
    model = sharp(build_model(MoEConfig.tiny(max_new_tokens=8, tie_embeddings=False), tok))
    pol = MoEPolicy(model, tok)
    sp = pol.coordinate_space(160, 210)
    assert (sp.kind, sp.model_width, sp.model_height) == ("relative", 1000, 1000)
    obs = Observation(screenshot(), 160, 210, elements=elements(3))
    # an untrained model writes gibberish: the parse error reaches the caller (the loop feeds it back)
    with pytest.raises(ActionParseError):
        pol.act("Click OK", obs, [])
    assert pol.last is not None and pol.last_ms > 0
    pol.save_pretrained(tmp_path)
    blind = load_dir(tmp_path, no_image=True, no_elements=True)
    p = blind.encode("Click OK", obs, [])
    assert p.image.sum() == 0 and 5 not in p.tokens
    with pytest.raises(ConfigError, match="unknown MoE policy options"):
        load_dir(tmp_path, bogus=1)
    with pytest.raises(ConfigError):
        load_dir(tmp_path / "nope")


def test_policy_spec_registry(tmp_path, tok):
    import policy
    save_pretrained(build_model(MoEConfig.tiny(), tok), tok, tmp_path)
    assert isinstance(policy.load(f"moe:{tmp_path}"), MoEPolicy)
    from policy.moe import CHECKPOINT_DIR
    if not (CHECKPOINT_DIR / "model.safetensors").is_file():
        with pytest.raises(ConfigError, match="built-in MoE checkpoint is missing"):
            load_builtin()


def test_dense_ablation_presets_match_active_and_total_parameters():
    from policy.train.distill import config_preset

    moe = MoEModel(config_preset("default", vocab_size=2000)).num_params()
    for preset, key in (("dense-active", "active"), ("dense-total", "total")):
        dense = MoEModel(config_preset(preset, vocab_size=2000))
        assert dense.moe_layers() == [] and dense.routing_stats() == []
        n = dense.num_params()
        assert n["active"] == n["total"] and abs(n["total"] - moe[key]) / moe[key] < 0.01, (preset, n, moe)
    # a dense model trains through the same path (no router, zero aux loss)
    cfg = MoEConfig.tiny(vocab_size=2000, dense_ff=96)
    model = MoEModel(cfg)
    assert model.moe_layers() == [] and float(model.aux_loss()) == 0.0


def test_served_moe_policy_gets_the_element_list(tok):
    """galago serve advertises that the MoE policy reads elements; openai: clients then send them
    (and the CSS viewport), so the served policy sees the same prompt as the in-process one."""
    from policy.openai import OpenAIPolicy
    from policy.serve import PolicyServer

    def policy():
        return MoEPolicy(sharp(build_model(MoEConfig.tiny(max_new_tokens=8, tie_embeddings=False), tok)), tok)

    local, served = policy(), policy()
    obs = Observation(screenshot(320, 420), 160, 210, elements=elements(4), dpr=2.0)  # a dpr-2 screenshot
    with PolicyServer(served, model_name="tiny-moe") as srv:
        srv.start()
        remote = OpenAIPolicy(f"tiny-moe@{srv.url}", retry_temperature=None)
        assert remote.sends_elements and remote.family.coords == "relative"
        outcomes = []
        for p in (local, remote):
            try:
                outcomes.append(p.act("Click the Submit button", obs, []).actions)
            except ActionParseError as e:
                outcomes.append(e.raw)
        assert outcomes[0] == outcomes[1]
        assert served.last.prompt_tokens == local.last.prompt_tokens
        blind = MoEPolicy(local.model, tok, no_elements=True)
        assert blind.encode("Click the Submit button", obs, []).tokens != local.encode("Click the Submit button", obs, []).tokens
        # a server whose policy reads no elements is never sent any
        with PolicyServer(blind, model_name="blind") as srv2:
            srv2.start()
            assert not OpenAIPolicy(f"blind@{srv2.url}").sends_elements


def test_copy_head_mixture_is_a_distribution_and_copies(tok):
    """With the gate shut the next token is exactly the attention over the prompt's tokens; the
    mixture sums to one; a tiny copy model learns to quote instruction words in a few steps."""
    torch.manual_seed(0)
    model = build_model(MoEConfig.tiny(copy_head=True), tok)
    ps = prompts(tok, model.cfg)
    batch, labels = collate(ps, [encode_target(tok, TEXTS[0])] * 3)
    logp, lab, _ = model(batch, labels)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(len(lab)), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        model.copy.gate.bias.fill_(-40.0)  # all mass on copying
    logp, _, _ = model(batch, labels)
    prompt_ids = set(ps[0].tokens) - set(range(8))
    first_row = logp[0].detach().exp()
    assert abs(sum(float(first_row[i]) for i in prompt_ids) - 1.0) < 1e-3
    # learn to answer 'Type "<word>"' with the word: two words never seen as targets are copied too
    # (a word quoted in the prompt is one token with its space, as encode_label writes it: the words
    # come from a tokenizer that has seen them after spaces)
    tok = GalagoTokenizer.train(TEXTS + [" " + " ".join(COPY_WORDS)] * 4, vocab_size=1600)
    words = [w for w in COPY_WORDS if len(tok.encode_label(w)) == 1]
    assert len(words) == 16
    model = build_model(MoEConfig.tiny(copy_head=True), tok).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def enc(w):
        return encode_observation(tok, model.cfg, f'Type "{w}" now', screenshot(), 160, 210, elements(2), [])
    for step in range(200):
        ws = [words[(step * 3 + k) % 14] for k in range(8)]
        batch, labels = collate([enc(w) for w in ws], [tok.encode_label(w) + [EOS] for w in ws])
        logp, lab, aux = model(batch, labels)
        loss = torch.nn.functional.cross_entropy(logp, lab) + aux
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = generate(model, [enc(words[14]), enc(words[15])], 1)
    assert [tok.decode(t).lstrip() for t in out.tokens] == words[14:], [tok.decode(t) for t in out.tokens]
