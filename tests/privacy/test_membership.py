"""Membership inference: the metrics against sklearn, the TPR@FPR rule, and two sanity checks
on UCI Heart Disease (no leak without the member data; a clear leak from an overfit model)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from guardrail.core.types import Interval, MetricResult
from guardrail.privacy import _stats
from guardrail.privacy.membership import (
    AttackReport,
    Logits,
    attack_metrics,
    cross_entropy_loss,
    lira_offline_attack,
    logit_confidence,
    loss_threshold_attack,
    train_reference_models,
)

# --- metrics --------------------------------------------------------------------------


def _value(metric: MetricResult) -> float:
    assert metric.value is not None, metric.reason
    return metric.value


def _ci(metric: MetricResult) -> Interval:
    assert metric.ci is not None, metric.ref
    return metric.ci


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties_overall_and_by_group(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 600
    member = rng.random(n) < 0.4
    scores = np.round(rng.normal(size=n) + 0.5 * member, 1)  # many ties
    sex = rng.choice(["F", "M"], size=n)
    report = attack_metrics(scores, member, {"sex": sex}, bootstrap=0)
    assert abs(_value(report.metric("auc")) - roc_auc_score(member, scores)) < 1e-12
    by_group = {g.group: g.value or 0.0 for g in report.metric("auc", "sex").by_group}
    for label in ("F", "M"):
        rows = sex == label
        assert abs(by_group[label] - roc_auc_score(member[rows], scores[rows])) < 1e-12
    assert report.metric("auc", "sex").value == max(by_group.values())
    assert report.metric("auc", "sex").details["group"] == max(
        by_group, key=by_group.__getitem__
    )


def test_tpr_at_fpr_and_advantage_follow_the_stated_rule() -> None:
    nonmember_scores = np.arange(1000.0)
    member_scores = np.concatenate(
        [np.full(9, 5000.0), [999.0], np.full(90, -1.0)]
    )  # one member ties the top non-member
    scores = np.concatenate([member_scores, nonmember_scores])
    member = np.arange(scores.size) < member_scores.size
    report = attack_metrics(scores, member, bootstrap=0)
    # vertices: (0, 0) → (0, 0.09) → (0.001, 0.10) [tie: diagonal] → … → (1, 0.10) → (1, 1)
    assert report.metric("tpr_at_0_1pct_fpr").value == pytest.approx(0.10)
    assert report.metric("tpr_at_1pct_fpr").value == pytest.approx(0.10)
    assert report.metric("advantage").value == pytest.approx(0.10 - 0.001)
    fpr, tpr = _stats.roc_points(*[np.array([c]) for c in _counts(scores, member)])
    assert float(_stats.tpr_at_fpr(fpr, tpr, 0.0005)[0]) == pytest.approx(
        0.095
    )  # halfway along the tie
    assert float(_stats.tpr_at_fpr(fpr, tpr, 0.0)[0]) == pytest.approx(0.09)
    assert abs(_value(report.metric("auc")) - roc_auc_score(member, scores)) < 1e-12


def _counts(scores: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    table = _stats.level_table(scores, member)
    return table.members, table.nonmembers


def test_tpr_at_low_fpr_is_undefined_with_too_few_nonmembers() -> None:
    rng = np.random.default_rng(0)
    member = np.arange(700) < 200  # 500 non-members: enough for 1% FPR, not for 0.1%
    report = attack_metrics(rng.normal(size=700) + member, member, bootstrap=50)
    low = report.metric("tpr_at_0_1pct_fpr")
    assert low.value is None and low.ci is None
    assert (
        low.reason is not None
        and "1000 non-members" in low.reason
        and "500" in low.reason
    )
    assert report.metric("tpr_at_1pct_fpr").value is not None


def test_intervals_are_seeded_and_built_one_way_per_figure() -> None:
    rng = np.random.default_rng(1)
    member = rng.random(3000) < 0.5
    scores = rng.normal(size=3000) + 0.3 * member
    first = attack_metrics(
        scores, member, {"site": rng.choice(list("ABC"), 3000)}, bootstrap=300, seed=7
    )
    again = attack_metrics(
        scores, member, {"site": rng.choice(list("ABC"), 3000)}, bootstrap=300, seed=7
    )
    assert first.metric("auc").ci == again.metric("auc").ci
    methods = {
        "auc": ("percentile bootstrap", 300),
        "advantage": ("simultaneous bootstrap", 300),
        "tpr_at_0_1pct_fpr": ("Clopper–Pearson", 0),  # no resampling: order statistics
        "tpr_at_1pct_fpr": ("Clopper–Pearson", 0),
    }
    for name, (method, resamples) in methods.items():
        metric = first.metric(name)
        assert (
            metric.ci is not None
            and metric.ci.resamples == resamples
            and method in metric.ci.method
            and ", " not in metric.ci.method  # the policy engine appends its correction after ", "
            and metric.ci.level == 0.95
            and len(metric.ci.quantiles) == 19
        )
        assert (
            metric.value is not None and metric.ci.low <= metric.value <= metric.ci.high
        ), name
    pooled = _ci(first.metric("auc"))
    assert pooled.low > 0.5
    site = first.metric("auc", "site")
    assert [g.group for g in site.by_group] == ["A", "B", "C"] and all(
        g.ci is not None for g in site.by_group
    )
    # a group's interval is wider than the pooled one
    assert all(
        g.ci is not None and g.ci.high - g.ci.low > pooled.high - pooled.low
        for g in site.by_group
    )


def test_roc_curve_for_the_chart_is_small_monotone_and_on_the_curve() -> None:
    rng = np.random.default_rng(2)
    member = rng.random(5000) < 0.5
    scores = rng.normal(size=5000) + member
    report = attack_metrics(
        scores, member, {"g": rng.choice(["x", "y"], 5000)}, bootstrap=0
    )
    roc = report.roc
    assert len(roc.fpr) <= 200 and len(roc.fpr) == len(roc.tpr)
    assert (roc.fpr[0], roc.fpr[-1], roc.tpr[-1]) == (0.0, 1.0, 1.0)
    assert np.all(np.diff(roc.fpr) > 0) and np.all(np.diff(roc.tpr) >= 0)
    assert set(report.artifacts()["roc_by_group"]["g"]) == {"x", "y"}
    fpr_all, tpr_all, _ = roc_curve(member, scores)
    assert np.allclose(roc.tpr, np.interp(roc.fpr, fpr_all, tpr_all), atol=2e-3)


def test_groups_without_both_classes_are_reported_not_dropped() -> None:
    member = np.array([True] * 40 + [False] * 40 + [True] * 5)
    scores = np.linspace(0, 1, member.size)
    site = np.array(["A"] * 80 + ["B"] * 5)
    auc = attack_metrics(scores, member, {"site": site}, bootstrap=0).metric(
        "auc", "site"
    )
    b = next(g for g in auc.by_group if g.group == "B")
    assert (
        b.value is None
        and b.reason is not None
        and "has 5 and 0" in b.reason
        and b.n == 5
        and b.small
    )


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="both members and non-members"):
        attack_metrics([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="finite"):
        attack_metrics([0.1, np.nan], [True, False])
    with pytest.raises(ValueError, match="at least 2 reference"):
        lira_offline_attack([0.0], [[0.0]])


def test_confidences_and_losses() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert np.allclose(cross_entropy_loss(proba, [0, 2]), -np.log([0.7, 0.8]))
    assert np.allclose(logit_confidence(proba, [0, 2]), np.log([0.7 / 0.3, 0.8 / 0.2]))
    assert np.isfinite(
        logit_confidence([1.0, 0.0], [1, 1])
    ).all()  # saturated outputs stay finite


# --- sanity checks on real data -------------------------------------------------------


@pytest.fixture(scope="module")
def heart() -> dict[str, np.ndarray]:
    from guardrail.datasets import load_heart_disease

    frame = load_heart_disease()
    numeric = (
        frame[
            [
                "age",
                "resting_bp",
                "cholesterol",
                "max_heart_rate",
                "st_depression",
                "exercise_angina",
                "major_vessels",
            ]
        ]
        .astype(float)
        .to_numpy()
    )
    numeric = np.where(np.isnan(numeric), np.nanmean(numeric, axis=0), numeric)
    x = np.column_stack(
        [
            numeric,
            (frame["sex"] == "Male").to_numpy(float),
            frame["chest_pain_type"].cat.codes.to_numpy(),
        ]
    )
    rows = np.random.default_rng(0).permutation(len(frame))
    quarter = len(rows) // 4
    return {
        "x": x,
        "y": frame["heart_disease"].to_numpy(),
        "sex": frame["sex"].astype(str).to_numpy(),
        "site": frame["site"].astype(str).to_numpy(),
        "shadow": rows[:quarter],  # trains the "unseen" target model
        "members": rows[quarter : 2 * quarter],
        "nonmembers": rows[2 * quarter : 3 * quarter],
        "population": rows[3 * quarter :],
    }


def _forest(
    heart: dict[str, np.ndarray],
) -> Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    from sklearn.ensemble import RandomForestClassifier

    def fit(train_idx: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        model = RandomForestClassifier(n_estimators=30, random_state=0).fit(
            heart["x"][train_idx], heart["y"][train_idx]
        )
        return lambda idx: np.asarray(model.predict_proba(heart["x"][idx]))

    return fit


def _both_attacks(
    heart: dict[str, np.ndarray], target_train: np.ndarray
) -> dict[str, AttackReport]:
    fit = _forest(heart)
    audited = np.concatenate([heart["members"], heart["nonmembers"]])
    is_member = np.arange(audited.size) < heart["members"].size
    predict = fit(target_train)
    proba = predict(audited)
    labels = heart["y"][audited]
    population = np.concatenate(
        [heart["population"], np.setdiff1d(heart["shadow"], target_train)]
    )
    references = train_reference_models(
        fit, population, audited, heart["y"], n_models=4, seed=0
    )
    groups = {"sex": heart["sex"][audited], "site": heart["site"][audited]}
    return {
        "loss": attack_metrics(
            loss_threshold_attack(cross_entropy_loss(proba, labels)),
            is_member,
            groups,
            attack="loss",
            bootstrap=500,
        ),
        "lira": attack_metrics(
            lira_offline_attack(logit_confidence(proba, labels), references.confidence),
            is_member,
            groups,
            attack="lira",
            bootstrap=500,
        ),
    }


def test_attack_auc_is_chance_on_a_model_that_never_saw_the_members(
    heart: dict[str, np.ndarray],
) -> None:
    reports = _both_attacks(heart, target_train=heart["shadow"])
    for name, report in reports.items():
        auc = report.metric("auc")
        assert _ci(auc).low <= 0.5 <= _ci(auc).high, (name, auc.value, auc.ci)
        assert abs(_value(auc) - 0.5) < 0.07, name
        sites = report.metric("auc", "site")
        assert {g.group for g in sites.by_group} == {
            "Cleveland",
            "Hungary",
            "Switzerland",
            "VA Long Beach",
        }


def test_attack_auc_is_clearly_above_chance_on_an_overfit_model(
    heart: dict[str, np.ndarray],
) -> None:
    reports = _both_attacks(heart, target_train=heart["members"])
    for name, report in reports.items():
        auc = report.metric("auc")
        assert _ci(auc).low > 0.6, (name, auc.value, auc.ci)
        assert _value(report.metric("advantage")) > 0.2, name
        assert (
            report.metric("tpr_at_0_1pct_fpr").value is None
        )  # 230 non-members: undefined, not 0
        assert {g.group for g in report.metric("auc", "sex").by_group} == {
            "Female",
            "Male",
        }


def test_reference_models_train_through_any_framework_and_never_on_audited_rows() -> (
    None
):
    import torch

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    seen: list[np.ndarray] = []

    def fit(train_idx: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        seen.append(train_idx)
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        features = torch.tensor(x[train_idx], dtype=torch.float32)
        target = torch.tensor(y[train_idx], dtype=torch.float32)
        for _ in range(50):
            optimizer.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(
                model(features).squeeze(-1), target
            ).backward()
            optimizer.step()

        def predict(idx: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return (
                    torch.sigmoid(model(torch.tensor(x[idx], dtype=torch.float32)))
                    .squeeze(-1)
                    .numpy()
                )

        return predict

    audited, population = np.arange(100), np.arange(100, 200)
    refs = train_reference_models(fit, population, audited, y, n_models=3, seed=1)
    assert refs.confidence.shape == refs.loss.shape == (3, 100)
    assert all(np.isin(idx, population).all() and idx.size == 50 for idx in seen)
    assert len({tuple(idx) for idx in refs.train_indices}) == 3
    assert np.all(
        np.isfinite(lira_offline_attack(refs.confidence[0], refs.confidence[1:]))
    )
    with pytest.raises(ValueError, match="overlap"):
        train_reference_models(fit, np.arange(50, 150), audited, y)


# --- precision: confident models are read from float64 logits (issue 14, defect 6) -------


def _tpr_at_1pct_oracle(scores: np.ndarray, member: np.ndarray) -> float:
    """TPR at FPR 1% by the stated rule, written out: with 100·k non-members and no ties, the
    curve is vertical at FPR k/(100k) = 1%, and its highest TPR counts the members scoring
    above the (k + 1)-th highest non-member."""
    nonmember = np.sort(scores[~member])[::-1]
    assert nonmember.size % 100 == 0 and np.unique(scores).size == scores.size
    return float(np.mean(scores[member] > nonmember[nonmember.size // 100]))


@pytest.fixture(scope="module")
def confident() -> dict[str, np.ndarray]:
    """An overfit torch logistic regression (250 features, 200 members with noisy labels) and
    four reference models on a disjoint population: float32 log-odds of every row."""
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n_members, n_nonmembers, n_population, width = 200, 1000, 600, 250
    rows = n_members + n_nonmembers + n_population
    x = rng.normal(size=(rows, width))
    y = (x @ rng.normal(size=width) / np.sqrt(width) + 3.0 * rng.normal(size=rows) > 0).astype(np.int64)
    features = torch.tensor(x, dtype=torch.float32)
    target = torch.tensor(y, dtype=torch.float32)

    def fit(train: np.ndarray) -> np.ndarray:
        torch.manual_seed(0)
        linear = torch.nn.Linear(width, 1)
        optimizer = torch.optim.Adam(linear.parameters(), lr=0.5)
        for _ in range(200):
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(linear(features[train]).squeeze(-1), target[train])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            return linear(features).squeeze(-1).numpy()  # float32, as a model gives them

    population = np.arange(n_members + n_nonmembers, rows)
    subsets = [np.sort(rng.choice(population, size=300, replace=False)) for _ in range(4)]
    return {
        "y": y,
        "target": fit(np.arange(n_members)),
        "references": np.stack([fit(subset) for subset in subsets]),
        "audited": np.arange(n_members + n_nonmembers),
        "member": np.arange(n_members + n_nonmembers) < n_members,
    }


def _float32_probability(log_odds: np.ndarray) -> np.ndarray:
    """What the old path handed the attacks: the softmax probability of class 1 in float32."""
    import torch

    return torch.softmax(torch.tensor(np.stack([np.zeros_like(log_odds), log_odds], -1)), -1)[..., 1].numpy()


def test_confident_models_are_attacked_from_float64_logits_not_float32_probabilities(
    confident: dict[str, np.ndarray],
) -> None:
    rows, member = confident["audited"], confident["member"]
    y = confident["y"][rows]
    target = confident["target"][rows]
    references = confident["references"][:, rows]
    saturated = _float32_probability(target)[member & (y == 1)] == 1.0
    assert saturated.mean() > 0.5  # the premise: float32 rounds most members' p to exactly 1

    # the oracle, written out in float64 from the logits: φ = ±log-odds, LiRA's global-variance score
    phi_target = np.where(y == 1, target, -target).astype(np.float64)
    phi_refs = np.where(y == 1, references, -references).astype(np.float64)
    lira_oracle = (phi_target - phi_refs.mean(0)) / np.sqrt(phi_refs.var(0, ddof=1).mean())
    oracle = {"loss": _tpr_at_1pct_oracle(phi_target, member), "lira": _tpr_at_1pct_oracle(lira_oracle, member)}

    def tpr(scores: np.ndarray) -> float:
        return _value(attack_metrics(scores, member, bootstrap=0).metric("tpr_at_1pct_fpr"))

    outputs = iter(confident["references"])  # "training" reference model k hands back its logits

    def fit(_train: np.ndarray) -> Callable[[np.ndarray], Logits]:
        z = next(outputs)
        return lambda idx: Logits(z[idx].astype(np.float64))

    reference_models = train_reference_models(
        fit, np.arange(rows.size, confident["y"].size), rows, confident["y"], n_models=4
    )
    assert reference_models.from_logits
    reported = {
        "loss": tpr(loss_threshold_attack(cross_entropy_loss(Logits(target.astype(np.float64)), y))),
        "lira": tpr(
            lira_offline_attack(logit_confidence(Logits(target.astype(np.float64)), y), reference_models.confidence)
        ),
    }
    old = {
        "loss": tpr(loss_threshold_attack(cross_entropy_loss(_float32_probability(target).astype(np.float64), y))),
        "lira": tpr(
            lira_offline_attack(
                logit_confidence(_float32_probability(target).astype(np.float64), y),
                np.stack([logit_confidence(_float32_probability(r).astype(np.float64), y) for r in references]),
            )
        ),
    }
    print(f"\nTPR at 1% FPR: float64 logits {reported}, oracle {oracle}, float32 probabilities {old}")
    for attack in ("loss", "lira"):
        assert reported[attack] == pytest.approx(oracle[attack], abs=1e-12), attack
        assert abs(old[attack] - oracle[attack]) > 0.002, attack  # the ties of saturated outputs moved it


def test_logits_give_exact_confidences_and_losses_where_probabilities_round() -> None:
    z = np.array([40.0, -40.0, 3.0, 700.0])
    y = np.array([1, 1, 0, 1])
    phi = logit_confidence(Logits(z), y)
    assert phi.tolist() == [40.0, -40.0, -3.0, 700.0]
    loss = cross_entropy_loss(Logits(z), y)
    expected = np.logaddexp(0.0, -np.array([40.0, -40.0, -3.0, 700.0]))
    assert np.all(loss > 0) and np.allclose(loss, expected, rtol=1e-15, atol=0)
    # multiclass log-probabilities: φ = log p_y − log(Σ_{j≠y} p_j), however small the rest
    log_p = np.log(np.array([[1e-30, 2e-30, 1.0]]))
    assert logit_confidence(Logits(log_p), [2])[0] == pytest.approx(-np.log(3e-30), rel=1e-12)
    # a probability of exactly 0 (a unanimous forest) is floored as before, never −inf
    assert logit_confidence(Logits([[-np.inf, 0.0]]), [1])[0] == pytest.approx(-np.log(1e-12))
    # from probabilities the rest is summed, not subtracted: 2-column float64 keeps its digits
    assert logit_confidence(np.array([[1e-11, 1.0]]), [1])[0] == pytest.approx(np.log(1e11), rel=1e-12)
