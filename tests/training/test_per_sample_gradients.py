"""Opacus' per-sample gradients (and ghost clipping) equal per-example backward passes."""

from __future__ import annotations

import warnings

import pytest
import torch

from guardrail.training.models import (
    MLPConfig,
    TinyBertConfig,
    build_mlp,
    build_tiny_bert,
    text_forward,
)

pytestmark = pytest.mark.filterwarnings("ignore:Secure RNG turned off:UserWarning")


def _mlp_case() -> tuple[torch.nn.Module, list[torch.Tensor], object]:
    torch.manual_seed(0)
    model = build_mlp(MLPConfig(6, 2, (8,)))
    x, y = torch.randn(5, 6), torch.tensor([0, 1, 1, 0, 1])
    return model, [x, y], lambda m, inputs: m(inputs[0])


def _bert_case() -> tuple[torch.nn.Module, list[torch.Tensor], object]:
    texts = [
        "chest pain at rest",
        "no symptoms today",
        "short of breath walking",
        "fever and cough",
        "tired",
    ]
    torch.manual_seed(0)
    model, tokenizer = build_tiny_bert(
        texts,
        2,
        TinyBertConfig(
            vocab_size=60,
            hidden_size=16,
            num_attention_heads=2,
            intermediate_size=32,
            max_length=12,
        ),
    )
    model.config.hidden_dropout_prob = 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    enc = tokenizer(
        texts, padding="max_length", truncation=True, max_length=12, return_tensors="pt"
    )
    y = torch.tensor([1, 0, 1, 1, 0])
    return (
        model,
        [enc["input_ids"], enc["attention_mask"], y],
        lambda m, inputs: text_forward(m, inputs[0], inputs[1]),
    )


def _per_example_grads(
    model: torch.nn.Module, tensors: list[torch.Tensor], forward: object
) -> list[dict[str, torch.Tensor]]:
    assert callable(forward)
    grads = []
    for i in range(len(tensors[-1])):
        model.zero_grad()
        *inputs, y = (t[i : i + 1] for t in tensors)
        torch.nn.functional.cross_entropy(forward(model, inputs), y).backward()
        grads.append(
            {
                n: p.grad.detach().clone()
                for n, p in model.named_parameters()
                if p.grad is not None
            }
        )
    return grads


@pytest.mark.parametrize("case", [_mlp_case, _bert_case], ids=["mlp", "tiny-bert"])
def test_hooks_grad_sample_equals_per_example_backward(case: object) -> None:
    from opacus import GradSampleModule

    assert callable(case)
    model, tensors, forward = case()
    expected = _per_example_grads(model, tensors, forward)
    gsm = GradSampleModule(model, loss_reduction="sum")
    *inputs, y = tensors
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Full backward hook is firing", category=UserWarning
        )
        # sum reduction: each per-sample gradient is exactly that example's own gradient
        torch.nn.functional.cross_entropy(
            forward(gsm, inputs), y, reduction="sum"
        ).backward()
    for name, param in model.named_parameters():
        for i, grads in enumerate(expected):
            if name in grads:
                torch.testing.assert_close(
                    param.grad_sample[i], grads[name], rtol=1e-4, atol=1e-6
                )


@pytest.mark.parametrize("case", [_mlp_case, _bert_case], ids=["mlp", "tiny-bert"])
@pytest.mark.parametrize("mode", ["ghost", "hooks", "ew"])
def test_clipped_update_equals_manual_clipping(case: object, mode: str) -> None:
    """With σ = 0, the DP optimizer's gradient is Σ clip(g_i, C) / B, computed from per-example passes."""
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    assert callable(case)
    model, tensors, forward = case()
    clip = 0.05
    expected_grads = _per_example_grads(model, tensors, forward)
    names = [n for n, _ in model.named_parameters()]
    manual = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for grads in expected_grads:
        norm = torch.sqrt(sum((g**2).sum() for g in grads.values()))
        for n, g in grads.items():
            manual[n] += g * min(1.0, clip / (float(norm) + 1e-6))
    batch = len(tensors[-1])
    loader = DataLoader(TensorDataset(*tensors), batch_size=batch)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Secure RNG turned off", category=UserWarning
        )
        made = PrivacyEngine().make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
            criterion=torch.nn.CrossEntropyLoss(),
            data_loader=loader,
            noise_multiplier=0.0,
            max_grad_norm=clip,
            poisson_sampling=False,
            grad_sample_mode=mode,
        )
    gsm, optimizer = made[0], made[1]
    criterion = made[2] if mode == "ghost" else torch.nn.CrossEntropyLoss()
    *inputs, y = tensors
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Full backward hook is firing", category=UserWarning
        )
        criterion(forward(gsm, inputs), y).backward()
    optimizer.step()
    params = dict(model.named_parameters())
    for n in names:
        torch.testing.assert_close(
            params[n].grad, manual[n] / batch, rtol=1e-3, atol=1e-7
        )
