"""The device path without a GPU: every job runs on torch's ``meta`` device, where each
op checks that its tensors share a device as CUDA does (docs/design.md section 16)."""

from __future__ import annotations

import copy

import pytest
import torch

from engine.datasets import ImageDataset
from engine.device import module_to_host, on_device, resolve_device, to_device, to_host
from engine.jobs import run_job
from engine.training import TrainConfig, evaluate, learn_class_job, train_job
from tests.engine.conftest import TINY

META = torch.device("meta")


def _data(classes=(0, 1, 2), per_class=2, seed=0) -> ImageDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(len(classes) * per_class, 1, 8, 8, generator=gen) * 2 - 1
    y = torch.tensor(classes).repeat_interleave(per_class)
    return ImageDataset("noise", list(classes), {c: str(c) for c in classes}, x, y, x, y)


def test_learn_runs_on_a_second_device_with_its_data_on_the_host(make_model):
    data = _data()
    model = make_model([0, 1, 2])
    # one step: ops on meta run through Python, about 0.5 s a step
    result = run_job(learn_class_job(model, 5, data.train_x[:2], epochs=1, batch_size=8,
                                     retain=(data.train_x, data.train_y), device="meta"))
    assert result.model.class_ids == [0, 1, 2, 5]
    assert all(p.device.type == "cpu" for p in result.model.parameters())


def test_train_and_evaluate_run_on_a_second_device():
    cfg = TrainConfig.for_dataset("digits", overrides=TINY, patch_size=2, epochs=1,
                                  batch_size=6, device="meta")
    result = run_job(train_job(cfg, dataset=_data()))
    assert set(result.per_class_accuracy) == {0, 1, 2}


def test_evaluation_counts_on_the_models_device(make_model):
    data = _data()
    model = make_model([0, 1, 2]).eval()
    on_cpu = evaluate(model, data.test_x, data.test_y)
    assert on_cpu[1] == pytest.approx(sum(on_cpu[0].values()) / 3)
    dry = copy.deepcopy(model).to(META)
    per_class, _ = evaluate(dry, data.test_x, data.test_y)  # host data, device model
    assert set(per_class) == {0, 1, 2}


def test_a_prompt_mask_on_the_host_drives_a_model_on_the_device(make_model):
    model = make_model([0, 1, 2, 3], adapter="deep").to(META)
    mask = torch.tensor([[True, False, True, False], [False, False, False, True]])
    assert model(torch.zeros(2, 1, 8, 8, device=META), mask, groups=2).shape == (2, 4)


def test_crossings(make_model):
    assert to_device(torch.ones(2), "cpu").device.type == "cpu"
    assert to_host(torch.ones(2, device=META)).tolist() == [0.0, 0.0]
    model = make_model([0])
    with on_device(model, META):
        assert next(model.parameters()).device == META
    assert next(model.parameters()).device.type == "cpu"
    assert next(module_to_host(model.to(META)).parameters()).device.type == "cpu"
    assert resolve_device("meta") == META
