"""Gradual unfreezing: a group's weights are bit-identical until its step, and change after it."""

from __future__ import annotations

import torch
from safetensors.torch import load_file
from tests.unit.train.fit_helpers import Record, cls_setup, full_weights, run_fit

from tunelab.models.freeze import layer_groups
from tunelab.train.strategies import StrategySetup, build_plan
from tunelab.train.strategies.unfreezing import GradualUnfreezing


def test_groups_open_top_down_on_their_step(tiny_bert, tmp_path):
    every = 2
    recipe, task, model, tok, train, val = cls_setup(
        tiny_bert, tmp_path, n=48, max_steps=9, eval_every=3, weight_decay=0.1, learning_rate=1e-2,
        strategies=[{"name": "gradual_unfreezing", "every": every}],
    )
    groups = layer_groups(model)
    named = {"head": groups.top, "layer.1": groups.layers[1], "layer.0": groups.layers[0],
             "embeddings": groups.embeddings}
    start = full_weights(model)
    plan = build_plan(recipe.train.strategies, StrategySetup(model, task, tok, train, recipe.train, 7))

    def unmoved(ctx) -> dict[str, bool]:
        now = full_weights(ctx.model)  # the embedding trains its used rows alone: compare whole tables
        return {k: all(torch.equal(now[n], start[n]) for n, _ in v) for k, v in named.items()}

    unchanged = Record(unmoved)
    plan.callbacks.append(unchanged)
    run_fit(recipe, task, model, tok, train, val, tmp_path, plan)

    opens_at = {"head": 1, "layer.1": 1 + every, "layer.0": 1 + 2 * every, "embeddings": 1 + 3 * every}
    for name, step in opens_at.items():
        flags = [seen[name] for seen in unchanged.seen]  # seen[i] is after step i + 1
        assert all(flags[: step - 1]), f"{name} moved before step {step}"
        assert not flags[step - 1], f"{name} did not move at step {step}"
    # frozen groups stayed in the optimiser (no grad, so no decay either)
    in_optimizer = {id(p) for g in plan.callbacks[0].groups for p in g}
    assert all(id(p) in in_optimizer for _, p in model.named_parameters())
    # the best weights include the groups that were frozen then, so restoring them is consistent
    best = load_file(str(tmp_path / "ckpt" / "best" / "trainable.safetensors"))
    assert set(best) == {n for n, _ in model.named_parameters()}


def test_state_follows_the_step_number_alone(tiny_bert, tmp_path):
    *_, model, _, _, _ = cls_setup(tiny_bert, tmp_path, n=8)
    groups = [[p for _, p in g] for g in layer_groups(model).top_down()]
    cb = GradualUnfreezing(groups, every=5)
    cb._apply(12)  # as after a resume at step 12: head, layer 1 and layer 0 open
    assert [all(p.requires_grad for p in g) for g in groups] == [True, True, True, False]
    assert cb.open_groups(0) == 1 and cb.open_groups(100) == 4
    # an evaluation changes nothing: checkpoints save what the optimiser holds, not requires_grad
    cb.on_evaluate(None, {})
    assert not any(p.requires_grad for p in groups[3])


def test_only_trainable_parameters_take_part(tiny_llama, tmp_path):
    from tests.unit.train.fit_helpers import sft_setup

    from tunelab.models.adapters import apply_adapter

    recipe, task, model, tok, feats = sft_setup(tiny_llama, tmp_path, n=8,
                                                strategies=[{"name": "gradual_unfreezing"}])
    model = apply_adapter(model, recipe.model.adapter, task.peft_task_type)
    plan = build_plan(recipe.train.strategies, StrategySetup(model, task, tok, feats, recipe.train, 7))
    groups = plan.callbacks[0].groups
    # LoRA: no trainable head or embeddings, so the groups are just the two layers' adapters
    assert len(groups) == 2 and all(p.requires_grad for g in groups for p in g)
