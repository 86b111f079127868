"""train.used_embedding_rows: only the input-embedding rows the training split uses are trained."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from tests.unit.train.fit_helpers import Crash, cls_setup, run_fit
from tests.unit.train.speed_helpers import assert_same_curve, cls_fit, losses
from torch import nn
from transformers import BertForSequenceClassification

from tunelab.config.train import TrainConfig
from tunelab.tasks import get_task
from tunelab.train.callbacks import Plan
from tunelab.train.embedding_rows import UsedRowsEmbedding, use_used_rows, used_ids, used_rows_problem
from tunelab.train.speed import Speed

THREADS = {"intra_op_threads": 1, "inter_op_threads": 1}


class _Net(nn.Module):
    """The least a model needs: an input table and something that reads it."""

    def __init__(self, vocab: int = 12, tie: bool = False) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 4, padding_idx=0)
        self.out = nn.Linear(4, vocab, bias=False)
        if tie:
            self.out.weight = self.emb.weight

    def get_input_embeddings(self) -> nn.Embedding:
        return self.emb

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(ids))


def test_used_ids_are_the_training_ids_and_the_padding_id():
    feats = [{"input_ids": [5, 3, 5]}, {"input_ids": [7]}]
    assert used_ids(feats, 12, (0, None)).tolist() == [0, 3, 5, 7]
    assert used_ids(feats, 12, (99,)).tolist() == [3, 5, 7], "ids outside the table are ignored"


def test_lookups_and_gradients_match_the_whole_table():
    torch.manual_seed(0)
    plain, net = _Net(), _Net()
    net.load_state_dict(plain.state_dict())
    used = torch.tensor([0, 2, 3, 5, 8])
    weight = net.emb.weight
    undo = use_used_rows(net, used)
    assert isinstance(net.emb, UsedRowsEmbedding) and net.emb.weight is weight, "the same Parameter"
    assert weight.shape == (5, 4)

    ids = torch.tensor([[2, 3, 0], [8, 5, 5]])
    plain(ids).square().sum().backward()
    net(ids).square().sum().backward()
    assert torch.equal(net(ids), plain(ids))
    assert torch.equal(weight.grad, plain.emb.weight.grad[used]), "the used rows' gradient"
    unused = torch.ones(12, dtype=torch.bool)
    unused[used] = False
    assert not plain.emb.weight.grad[unused].any(), "the rows it leaves out get no gradient anyway"
    assert not weight.grad[0].any(), "padding_idx keeps its zero gradient"

    net.eval()  # ids that never occur in training come from the full table
    unseen = torch.tensor([[1, 2, 11]])
    assert torch.equal(net(unseen), plain(unseen))
    net.train()
    with pytest.raises(RuntimeError, match="token id 1 is not in the training split"):
        net(unseen)

    with torch.no_grad():
        weight.add_(1.0)
    undo()
    assert type(net.emb) is nn.Embedding and net.emb.weight is weight and weight.shape == (12, 4)
    expected = plain.emb.weight.detach().clone()
    expected[used] += 1.0
    assert torch.equal(weight, expected), "trained rows written back, the others as they were"


def test_refused_where_it_would_change_what_trains():
    assert used_rows_problem(_Net()) is None
    assert "tied" in used_rows_problem(_Net(tie=True))
    frozen = _Net()
    frozen.emb.weight.requires_grad_(False)
    assert "frozen" in used_rows_problem(frozen)
    assert "no plain nn.Embedding" in used_rows_problem(nn.Linear(2, 2))


def _resolve(cfg: TrainConfig, model: nn.Module, device: str = "cpu", feats=None) -> Speed:
    feats = [{"input_ids": [1, 2, 3]}] if feats is None else feats
    return Speed.resolve(cfg, get_task("classification"), model, torch.device(device), "fp32", [3], THREADS,
                         feats, 0)


def test_auto_is_on_for_eager_cpu_when_the_used_rows_are_few():
    assert _resolve(TrainConfig(), _Net()).used_embedding_rows == 4, "ids 1, 2, 3 and the padding id"
    assert _resolve(TrainConfig(), _Net(), "meta").used_embedding_rows == 0, "auto: CPU only"
    assert _resolve(TrainConfig(compile=True), _Net()).used_embedding_rows == 0, "auto: not compiled"
    many = [{"input_ids": list(range(10))}]
    assert _resolve(TrainConfig(), _Net(), feats=many).used_embedding_rows == 0, "10 of 12: no gain"
    assert _resolve(TrainConfig(used_embedding_rows=True), _Net(), feats=many).used_embedding_rows == 10
    assert _resolve(TrainConfig(), _Net(tie=True)).used_embedding_rows == 0
    with pytest.raises(ValueError, match="used_embedding_rows: true, but the input embedding is tied"):
        _resolve(TrainConfig(used_embedding_rows=True), _Net(tie=True))


def test_fit_trains_the_same_rows_and_leaves_the_rest(tiny_bert, tmp_path):
    on, net_on = cls_fit(tiny_bert, tmp_path / "on", weight_decay=0.1)
    off, net_off = cls_fit(tiny_bert, tmp_path / "off", weight_decay=0.1, used_embedding_rows=False)
    vocab = net_off.get_input_embeddings().num_embeddings
    assert 0 < on.speed["used_embedding_rows"] < vocab and off.speed["used_embedding_rows"] == 0
    assert type(net_on.get_input_embeddings()) is nn.Embedding, "fit puts the plain embedding back"
    assert_same_curve(losses(on), losses(off), rtol=1e-5, trains=False)  # clipping sums in another order

    # the trained rows match; the unused ones stay as loaded, where AdamW's decay shrank them slightly
    base = BertForSequenceClassification.from_pretrained(tiny_bert).get_input_embeddings().weight
    a, b = net_on.get_input_embeddings().weight, net_off.get_input_embeddings().weight
    kept = (a == base).all(dim=1)
    unused = vocab - on.speed["used_embedding_rows"]
    assert int(kept.sum()) == unused + 1, "the unused rows and the all-zero padding row"
    assert torch.allclose(a[~kept], b[~kept], rtol=1e-4, atol=1e-7)
    nonzero = base[kept] != 0
    factor = (b[kept][nonzero] / base[kept][nonzero]).detach()
    assert 0.9 < float(factor.mean()) < 1.0 and torch.allclose(factor, factor.mean(), rtol=1e-5), (
        "the whole table's unused rows are the loaded ones times AdamW's decay, one factor for all"
    )
    # the checkpoint holds the full table under its own name, as with the switch off
    best_on = load_file(str(tmp_path / "on" / "ckpt" / "best" / "trainable.safetensors"))
    best_off = load_file(str(tmp_path / "off" / "ckpt" / "best" / "trainable.safetensors"))
    assert {k: v.shape for k, v in best_on.items()} == {k: v.shape for k, v in best_off.items()}


def test_resume_after_a_kill_is_exact(tiny_bert, tmp_path):
    cfg = {"save_every": 5, "eval_every": 5}
    straight, net_a = cls_fit(tiny_bert, tmp_path / "a", **cfg)
    assert straight.speed["used_embedding_rows"] > 0
    with pytest.raises(KeyboardInterrupt):
        cls_fit(tiny_bert, tmp_path / "b", plan=Plan(callbacks=[Crash(12)]), **cfg)
    resumed, net_b = cls_fit(tiny_bert, tmp_path / "b", resume=True, **cfg)
    assert resumed.resumed_from == 10
    assert losses(resumed)[10:] == losses(straight)[10:]
    for (n, p), q in zip(net_a.named_parameters(), net_b.parameters(), strict=True):
        assert torch.equal(p, q), n


def test_a_start_that_fails_gives_the_model_back_whole(tiny_bert, tmp_path, fresh_accelerator_state):
    recipe, task, net, tok, train, val = cls_setup(tiny_bert, tmp_path, n=16, max_steps=2)
    bad = tmp_path / "ckpt" / "step-00000001"  # run_fit's checkpoint folder, holding a foreign file
    bad.mkdir(parents=True)
    save_file({"not.a.parameter": torch.zeros(1)}, str(bad / "trainable.safetensors"))
    (bad / "trainer_state.json").write_text("{}")
    with pytest.raises(RuntimeError, match="do not match the model"):
        run_fit(recipe, task, net, tok, train, val, tmp_path, resume=True)
    emb = net.get_input_embeddings()
    assert type(emb) is nn.Embedding and emb.weight.shape[0] == emb.num_embeddings
