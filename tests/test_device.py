"""Tests for neurograph.device: device and dtype names of a scenario to torch objects."""

from __future__ import annotations

from typing import get_args

import pytest
import torch

from neurograph.device import DTYPES, resolve_device, torch_dtype
from neurograph.schema import DtypeName


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_resolve_cpu_and_auto_without_gpu(no_gpu) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_auto_prefers_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_gpu_raises(no_gpu, device: str) -> None:
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        resolve_device(device)


@pytest.mark.parametrize("device", ["gpu", "CPU", "", "tpu", "mps", "cpu0"])
def test_bad_device_strings_raise(device: str) -> None:
    with pytest.raises(ValueError, match="device must be cpu, cuda or auto"):
        resolve_device(device)


@pytest.mark.parametrize("device", ["cudafoo", "cuda:x"])
def test_bad_cuda_strings_raise_value_error_with_gpu(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ValueError):
        resolve_device(device)


def test_every_schema_dtype_name_has_a_torch_dtype() -> None:
    assert tuple(DTYPES) == get_args(DtypeName)
    assert torch_dtype("float32") is torch.float32 and torch_dtype("float64") is torch.float64


def test_unknown_dtype_name_lists_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match="float32, float64.*'half'"):
        torch_dtype("half")
