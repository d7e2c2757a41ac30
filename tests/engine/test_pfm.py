"""The pre-forgettable ViT: prompts per class, masking, modes, and the artifact split."""

from __future__ import annotations

import pytest
import torch

from engine import serialize
from engine.pfm import PreForgettableViT
from storage.errors import NotFoundError, RefusedError, UnpromptError

X = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_logits_cover_the_remaining_classes_only(make_model):
    model = make_model([2, 5, 7]).eval()
    assert model(X).shape == (6, 3)
    model.remove_classes([5])
    assert model.class_ids == [2, 7]
    assert model(X).shape == (6, 2)
    with pytest.raises(NotFoundError):
        model.remove_classes([5])


def test_a_masked_prompt_is_the_same_as_a_removed_one(make_model):
    model = make_model([0, 1, 2, 3], adapter="deep").eval()
    mask = torch.tensor([[True, False, True, False]] * len(X))
    masked = model(X, mask)[:, [0, 2]]
    model.remove_classes([1, 3])
    torch.testing.assert_close(masked, model(X), rtol=0, atol=1e-5)


def test_prompt_order_does_not_matter(make_model):
    model = make_model([0, 1, 2]).eval()
    shuffled = make_model([0, 1, 2], seed=9).eval()
    shuffled.load_state_dict(model.state_dict())
    with torch.no_grad():  # class 0 now holds class 2's prompt and vice versa
        shuffled.prompts["0"].copy_(model.prompts["2"])
        shuffled.prompts["2"].copy_(model.prompts["0"])
    torch.testing.assert_close(model.features(X), shuffled.features(X), rtol=0, atol=1e-5)


def test_removing_a_class_deletes_exactly_its_parameters(make_model):
    model = make_model([0, 1, 2], mode="isolated")
    before = _state(model)
    model.remove_classes([1])
    after = _state(model)
    gone = set(before) - set(after)
    assert gone == {"prompts.1", "heads.1", "deep.1"}
    assert all(torch.equal(before[k], after[k]) for k in after)


def test_adding_a_class_leaves_the_others_untouched(make_model):
    model = make_model([0, 1], mode="frozen")
    before = _state(model)
    model.add_class(4)
    after = _state(model)
    assert set(after) - set(before) == {"prompts.4", "heads.4"}
    assert all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(RefusedError):
        model.add_class(4)


def test_isolated_mode_gives_gradient_only_to_class_parameters(make_model):
    model = make_model([0, 1, 2], mode="isolated").train()
    mask = torch.tensor([[True, False, True]] * len(X))
    model(X, mask).logsumexp(-1).sum().backward()
    for name, param in model.backbone.named_parameters():
        assert param.grad is None or not param.grad.any(), name
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    owners = {n.split(".")[1] for n in trainable}
    assert all(n.split(".")[0] in ("prompts", "heads", "deep") for n in trainable)
    assert owners == {"0", "1", "2"}
    assert model.prompts["0"].grad.any()
    assert model.prompts["1"].grad is None or not model.prompts["1"].grad.any()


def test_lora_trains_rank_4_adapters_on_attention(make_model):
    model = make_model([0, 1], mode="lora")
    shared = [n for n, p in model.backbone.named_parameters() if p.requires_grad]
    assert shared and all("lora_" in n and ".attn." in n for n in shared)
    lora_a = model.backbone.blocks[0].attn.qkv.lora_A["default"].weight
    assert lora_a.shape[0] == 4


def test_full_mode_trains_the_backbone(make_model):
    model = make_model([0, 1], mode="full")
    assert all(p.requires_grad for p in model.backbone.parameters())


def test_bad_backbones_and_weights_are_clear_errors(tmp_path, make_model):
    with pytest.raises(UnpromptError, match="not a timm ViT"):
        PreForgettableViT([0], backbone="resnet18")
    with pytest.raises(UnpromptError, match="Could not build"):
        PreForgettableViT([0], backbone="vit_does_not_exist")
    with pytest.raises(UnpromptError, match="timm hub"):
        make_model([0], pretrained="hub")
    with pytest.raises(UnpromptError, match="does not exist"):
        make_model([0], pretrained=str(tmp_path / "none.safetensors"))
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(UnpromptError, match="not a readable weights file"):
        make_model([0], pretrained=str(tmp_path / "bad.pt"))


def test_local_weights_file_loads_into_the_backbone(tmp_path, make_model):
    from safetensors.torch import save_file

    source = make_model([0], seed=3)
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in source.backbone.state_dict().items()}, str(path))
    model = make_model([0], pretrained=str(path))
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value)
    torch.save({"state_dict": {"pos_embed": torch.zeros(1, 3, 7)}}, tmp_path / "other.pt")
    with pytest.raises(UnpromptError, match="do not fit"):
        make_model([0], pretrained=str(tmp_path / "other.pt"))


# ---------------------------------------------------------------- artifacts

@pytest.mark.parametrize("mode", ["isolated", "lora", "full"])
def test_split_and_assemble_round_trip(make_model, mode):
    model = make_model([0, 1, 2, 3], mode=mode).eval()
    shared, classes = serialize.split(model)
    rebuilt = serialize.assemble(shared, classes)
    assert torch.equal(rebuilt(X), model(X))
    partial = serialize.assemble(shared, {k: v for k, v in classes.items() if k != 2})
    model.remove_classes([2])
    assert torch.equal(partial(X), model(X))
    assert serialize.shared_bytes(model) == shared  # forgetting never rewrites it
    assert serialize.split(rebuilt)[1] == classes  # byte-identical, so hashes are stable


def test_fingerprints_are_the_raw_tensor_bytes(make_model):
    model = make_model([0, 1], mode="isolated")
    data = serialize.class_bytes(model, 1)
    prints = serialize.class_tensor_fingerprints(data)
    owned = model.class_parameters(1).values()
    expected = {p.detach().numpy().astype("<f4").tobytes() for p in owned}
    assert set(prints) == expected and all(p in data for p in prints)


def test_damaged_or_mismatched_artifacts_are_refused(make_model):
    model = make_model([0, 1])
    shared, classes = serialize.split(model)
    with pytest.raises(UnpromptError):
        serialize.assemble(b"junk", classes)
    with pytest.raises(UnpromptError, match="belongs to class 0"):
        serialize.assemble(shared, {1: classes[0]})
    with pytest.raises(UnpromptError):
        serialize.assemble(shared, {0: classes[0][:-10]})
