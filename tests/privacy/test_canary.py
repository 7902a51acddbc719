"""The one-run canary audit: the bound itself, the guessing, and planted DP-SGD bugs caught.

The planted-bug test trains a real DP-SGD model with Opacus' PrivacyEngine (Poisson
sampling) on UCI Heart Disease features plus white-box "Dirac" gradient canaries, once
correctly and once with each planted bug, 20 seeds each, and requires the audit to raise
no false alarm on the correct run and to catch each bug in at least 19 of 20 seeds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from scipy.special import logit
from scipy.stats import binom

from guardrail.privacy.canary import (
    CanaryRun,
    audit_canary_scores,
    default_guess_grid,
    epsilon_lower_bound,
    one_run_canary_audit,
    p_value,
)

# --- the bound ------------------------------------------------------------------------


def _p_value_by_hand(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """Steinke et al.'s p-value, written as plainly as possible (an independent oracle)."""
    q = math.exp(eps) / (1 + math.exp(eps))
    pmf = [float(binom.pmf(k, r, q)) for k in range(r + 1)]
    tail = sum(pmf[v:])
    alpha = 0.0
    for i in range(1, v + 1):
        alpha = max(alpha, sum(pmf[v - i : v]) / i)
    return min(1.0, tail + 2 * m * delta * alpha)


@pytest.mark.parametrize(
    ("m", "r", "v", "eps", "delta"),
    [
        (1000, 100, 90, 1.0, 1e-5),
        (1000, 200, 200, 3.0, 1e-5),
        (50, 20, 12, 0.3, 1e-3),
        (100, 40, 0, 0.5, 1e-5),
        (1000, 400, 380, 2.5, 0.0),
    ],
)
def test_p_value_matches_the_theorem_written_out(
    m: int, r: int, v: int, eps: float, delta: float
) -> None:
    assert p_value(v, r, eps, delta, canaries=m) == pytest.approx(
        _p_value_by_hand(m, r, v, eps, delta), rel=1e-10, abs=1e-15
    )


@pytest.mark.parametrize("r", [10, 50, 100, 400])
def test_all_correct_with_pure_dp_has_a_closed_form(r: int) -> None:
    # P[Binomial(r, q) ≥ r] = q^r ≤ 0.05  ⇔  q ≥ 0.05^(1/r)  ⇔  ε ≥ logit(0.05^(1/r))
    assert epsilon_lower_bound(r, r, 0.0, canaries=r) == pytest.approx(
        float(logit(0.05 ** (1 / r))), abs=1e-7
    )


def test_bound_grows_with_guesses_when_all_are_right_and_is_zero_at_chance() -> None:
    bounds = [
        epsilon_lower_bound(r, r, 1e-5, canaries=1000) for r in (10, 30, 100, 300, 1000)
    ]
    assert bounds == sorted(bounds) and bounds[0] > 0
    assert bounds[-1] == pytest.approx(5.78, abs=0.01)
    for r in (10, 100, 1000):
        assert epsilon_lower_bound(r // 2, r, 1e-5, canaries=1000) == 0.0
    # more right answers, higher bound; a larger δ or more canaries, lower bound
    assert (
        epsilon_lower_bound(90, 100, 1e-5, canaries=1000)
        > epsilon_lower_bound(80, 100, 1e-5, canaries=1000)
        > 0
    )
    assert epsilon_lower_bound(100, 100, 1e-3, canaries=1000) < epsilon_lower_bound(
        100, 100, 1e-5, canaries=1000
    )
    assert epsilon_lower_bound(100, 100, 1e-4, canaries=10_000) < epsilon_lower_bound(
        100, 100, 1e-4, canaries=100
    )
    # the p-value at the bound sits at the threshold
    eps = epsilon_lower_bound(180, 200, 1e-5, canaries=1000)
    assert (
        p_value(180, 200, eps, 1e-5, canaries=1000)
        <= 0.05
        < p_value(180, 200, eps + 1e-6, 1e-5, canaries=1000)
    )


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="correct ≤ guesses ≤ canaries"):
        epsilon_lower_bound(11, 10, 1e-5, canaries=100)
    with pytest.raises(ValueError, match="confidence"):
        epsilon_lower_bound(5, 10, 1e-5, 0.2, canaries=100)


# --- guessing and the report ----------------------------------------------------------


def test_guesses_count_top_and_bottom_scores_with_bonferroni() -> None:
    included = np.array([True] * 50 + [False] * 50)
    scores = np.where(included, 1.0, 0.0) + np.linspace(
        0, 0.5, 100
    )  # perfectly separated
    report = audit_canary_scores(
        scores,
        included,
        epsilon_claimed=1.0,
        delta=1e-5,
        guess_grid=[(10, 10), (40, 40)],
    )
    assert [(g.guesses, g.correct) for g in report.grid] == [(20, 20), (80, 80)]
    assert report.epsilon_lower == pytest.approx(
        epsilon_lower_bound(80, 80, 1e-5, 1 - 0.05 / 2, canaries=100)
    )
    assert (report.k_plus, report.k_minus, report.guesses, report.correct) == (
        40,
        40,
        80,
        80,
    )
    assert (
        report.violated
        and report.verdict == "claim violated"
        and "exceeds the claimed" in report.message
    )
    metrics = {m.key: m for m in report.to_metrics()}
    assert metrics["privacy.dp_audit.claim_excess"].value == pytest.approx(
        report.epsilon_lower - 1.0
    )
    assert metrics["privacy.dp_audit.epsilon_lower"].details["correct"] == 80


def test_random_scores_prove_nothing() -> None:
    def train(included: np.ndarray) -> CanaryRun:
        return CanaryRun(
            scores=np.random.default_rng(1).normal(size=included.size),
            epsilon_claimed=0.5,
        )

    report = one_run_canary_audit(train, canaries=1000, delta=1e-5, seed=3)
    assert report.verdict == "claim holds" and not report.violated
    assert report.epsilon_lower < 0.5
    assert report.canaries == 1000 and 400 < report.included < 600
    assert default_guess_grid(1000) == ((50, 50), (100, 100), (200, 200))


def test_bad_guess_grids_are_refused() -> None:
    with pytest.raises(ValueError, match="guess"):
        audit_canary_scores(
            np.zeros(10),
            np.zeros(10, bool),
            epsilon_claimed=1.0,
            delta=0.0,
            guess_grid=[(6, 6)],
        )
    with pytest.raises(ValueError, match="same length"):
        audit_canary_scores(
            np.zeros(10), np.zeros(9, bool), epsilon_claimed=1.0, delta=0.0
        )


# --- planted bugs in a real DP-SGD run ------------------------------------------------

Bug = Literal["none", "noise_divided_by_10", "clipping_disabled"]

CANARIES = 1000
DELTA = 1e-5
SIGMA = 2.0  # the noise multiplier the accountant is told
CLIP = 1.0  # the clipping norm the accountant is told
CANARY_NORM = 100.0  # each canary's gradient norm before clipping
EPOCHS = 10
BATCH_FRACTION = (
    0.1  # expected batch = 10% of the rows: q ≈ 0.1, 100 steps, ε_claimed ≈ 2.4–2.6
)
SEEDS = range(20)


@pytest.fixture(scope="module")
def heart_features() -> tuple[np.ndarray, np.ndarray]:
    from guardrail.datasets import load_heart_disease

    heart = load_heart_disease()
    numeric = (
        heart[["age", "resting_bp", "cholesterol", "max_heart_rate", "st_depression"]]
        .astype(float)
        .to_numpy()
    )
    numeric = np.where(np.isnan(numeric), np.nanmean(numeric, axis=0), numeric)
    numeric = (numeric - numeric.mean(axis=0)) / numeric.std(axis=0)
    x = np.column_stack(
        [numeric, (heart["sex"] == "Male").to_numpy(float), np.ones(len(heart))]
    )  # last: intercept
    return x, heart["heart_disease"].to_numpy(float)


def dp_sgd_with_dirac_canaries(
    x_real: np.ndarray, y_real: np.ndarray, bug: Bug, seed: int
) -> Callable[[np.ndarray], CanaryRun]:
    """A training function for the audit: logistic regression by DP-SGD (Opacus), with canaries.

    Canary ``i`` is a "Dirac" gradient canary (Nasr et al. 2023; Steinke et al. 2023, white
    box): a row whose only non-zero feature is its own coordinate ``d + i`` (value
    ``CANARY_NORM``), trained with loss ``−logit``, so its per-example gradient is
    ``−CANARY_NORM · e_{d+i}`` — one coordinate that no real row and no other canary
    touches. After training, canary ``i``'s score is the weight on that coordinate: the sum
    of its clipped gradients (if included) plus DP noise. Planted bugs: the optimizer uses
    σ/10 (``noise_divided_by_10``), or clips at 1e6 with noise still σ · CLIP
    (``clipping_disabled``), while the accountant is told σ = SIGMA and C = CLIP.
    """

    def train(included: np.ndarray) -> CanaryRun:
        import torch
        from opacus import PrivacyEngine
        from opacus.accountants import RDPAccountant

        torch.manual_seed(seed)
        n_real, d = x_real.shape
        inside = np.flatnonzero(included)
        canary_rows = np.zeros((inside.size, d + CANARIES))
        canary_rows[np.arange(inside.size), d + inside] = CANARY_NORM
        x = np.vstack(
            [np.column_stack([x_real, np.zeros((n_real, CANARIES))]), canary_rows]
        )
        y = np.concatenate([y_real, np.zeros(inside.size)])
        is_canary = np.concatenate([np.zeros(n_real), np.ones(inside.size)])
        data = torch.utils.data.TensorDataset(
            *(torch.tensor(a, dtype=torch.float32) for a in (x, y, is_canary))
        )
        loader = torch.utils.data.DataLoader(
            data, batch_size=round(BATCH_FRACTION * len(data))
        )
        model = torch.nn.Linear(d + CANARIES, 1, bias=False)
        torch.nn.init.zeros_(model.weight)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        noise, clip = SIGMA, CLIP
        if bug == "noise_divided_by_10":
            noise = SIGMA / 10
        elif bug == "clipping_disabled":
            noise, clip = (
                SIGMA * CLIP / 1e6,
                1e6,
            )  # noise std σ·C as claimed, but nothing is clipped
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            engine = PrivacyEngine(accountant="rdp")
            model, optimizer, loader = engine.make_private(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                noise_multiplier=noise,
                max_grad_norm=clip,
                poisson_sampling=True,
                noise_generator=torch.Generator().manual_seed(seed),
            )
            steps = 0
            for _ in range(EPOCHS):
                for xb, yb, cb in loader:
                    optimizer.zero_grad()
                    logits = model(xb).squeeze(-1)
                    bce = torch.nn.functional.binary_cross_entropy_with_logits(
                        logits, yb, reduction="none"
                    )
                    torch.where(cb > 0, -logits, bce).mean().backward()
                    optimizer.step()
                    steps += 1
        accountant = (
            RDPAccountant()
        )  # what the run claims: σ = SIGMA at Opacus' sample rate
        accountant.history = [(SIGMA, 1 / len(loader), steps)]
        claimed = accountant.get_epsilon(DELTA)
        if bug == "none":
            assert claimed == pytest.approx(
                engine.get_epsilon(DELTA)
            )  # the claim is Opacus' own
        weights = model._module.weight.detach().numpy()[0]
        return CanaryRun(scores=weights[d:], epsilon_claimed=claimed)

    return train


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (and a loaded CI machine does not thrash)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bug", ["none", "noise_divided_by_10", "clipping_disabled"])
@pytest.mark.usefixtures("one_torch_thread")
def test_planted_dp_sgd_bugs_are_caught_and_correct_runs_pass(
    bug: Bug,
    heart_features: tuple[np.ndarray, np.ndarray],
    record_property: Callable[[str, object], None],
) -> None:
    x, y = heart_features
    reports = [
        one_run_canary_audit(
            dp_sgd_with_dirac_canaries(x, y, bug, seed),
            canaries=CANARIES,
            delta=DELTA,
            seed=seed,
        )
        for seed in SEEDS
    ]
    lower = [round(r.epsilon_lower, 3) for r in reports]
    claimed = [round(r.epsilon_claimed, 3) for r in reports]
    alarms = sum(r.violated for r in reports)
    record_property("epsilon_lower", lower)
    record_property("epsilon_claimed", claimed)
    print(
        f"\n{bug}: alarms {alarms}/{len(reports)}; ε_lower {lower}; ε_claimed {sorted(set(claimed))}"
    )
    assert all(1.5 < c < 3.5 for c in claimed)
    if bug == "none":
        assert alarms == 0
    else:
        assert alarms >= 19


def test_a_canary_report_round_trips_through_its_file(tmp_path: Path) -> None:
    from guardrail.core.errors import DataError
    from guardrail.privacy.canary import audit_canary_scores, load_canary_report, save_canary_report

    rng = np.random.default_rng(3)
    included = rng.random(200) < 0.5
    report = audit_canary_scores(rng.normal(size=200) + 3.0 * included, included, epsilon_claimed=1.0, delta=1e-5)
    path = save_canary_report(report, tmp_path / "dp_audit.json")
    assert load_canary_report(path) == report
    path.write_text(path.read_text().replace("claim violated", "claim ignored").replace("claim holds", "claim ignored"))
    with pytest.raises(DataError, match="cannot read the DP audit report"):
        load_canary_report(path)
    (tmp_path / "other.json").write_text('{"kind": "something-else"}')
    with pytest.raises(DataError, match="not a guardrail-dp-audit file"):
        load_canary_report(tmp_path / "other.json")
