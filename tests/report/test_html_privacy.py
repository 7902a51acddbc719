"""The privacy section of the HTML report: the DP-claim check, the ledger, the ROC curves and
the risk of every group, built from a hand-made privacy audit result."""

from __future__ import annotations

import dataclasses
import re

from guardrail.core.types import AuditResult, AuditStatus, GroupValue, Interval, MetricResult, RunRecord
from guardrail.report import render
from guardrail.report.privacy_view import privacy_view

SCRIPT = "<script>window.__pwned=1</script>"
TOO_FEW = "TPR at 1.0% FPR needs at least 100 non-members to be meaningful"


def _ci(low: float, high: float) -> Interval:
    return Interval(low=low, high=high, level=0.95, method="percentile")


def privacy_result(*, violated: bool = False, group: str = "Female") -> AuditResult:
    counts = {group: [143, 30], "Male": [501, 108]}
    metrics = []
    for attack, auc in (("loss", 0.52), ("lira", 0.58)):
        metrics.append(MetricResult(f"privacy.mia.{attack}.auc", auc, ci=_ci(auc - 0.05, auc + 0.05), n=782))
        metrics.append(
            MetricResult(
                f"privacy.mia.{attack}.auc",
                auc + 0.01,
                scope="sex",
                details={"members_nonmembers": counts},
                by_group=(
                    GroupValue(group, auc + 0.01, 173, ci=_ci(0.48, 0.69)),
                    GroupValue("Male", auc - 0.01, 609, ci=_ci(0.46, 0.58)),
                ),
            )
        )
        metrics.append(
            MetricResult(
                f"privacy.mia.{attack}.tpr_at_1pct_fpr",
                0.03,
                scope="sex",
                by_group=(
                    GroupValue(group, None, 173, reason=f"{TOO_FEW}; there are 30"),
                    GroupValue("Male", 0.03, 609, ci=_ci(0.0, 0.07)),
                ),
            )
        )
    claimed, lower = 3.0, (4.2 if violated else 0.74)
    artifacts = {
        "roc.loss": {"attack": "loss", "roc": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.52, 1.0]}},
        "roc.lira": {"attack": "lira", "roc": {"fpr": [0.0, 0.4, 1.0], "tpr": [0.0, 0.58, 1.0]}},
        "ledger": {
            "delta": 1e-5,
            "accountant": "prv",
            "epsilon_rdp": 3.26,
            "epsilon_prv": 2.998,
            "steps": 300,
            "history": [[2.578, 0.0994, 300]],
            "max_grad_norm": 1.0,
            "sampling": "poisson",
            "stopped_reason": None,
            "data_sha256": "c8e8" * 16,
            "notes": ["feature scaling was fitted without DP"],
        },
        "dp_audit": {
            "message": f"DP claim {'violated' if violated else 'holds'}: ε_lower = {lower}",
            "epsilon_lower": lower,
            "epsilon_claimed": claimed,
            "confidence": 0.95,
            "canaries": 1000,
            "included": 473,
            "guesses": 200,
            "correct": 150,
            "verdict": "claim violated" if violated else "claim holds",
        },
        "rows": {"members": 644, "non_members": 138, "population": 138},
    }
    return AuditResult("privacy", "privacy", AuditStatus.OK, metrics=tuple(metrics), artifacts=artifacts)


def _page(record: RunRecord, result: AuditResult) -> str:
    return render(dataclasses.replace(record, results=(result,)), "html")


def test_privacy_section_shows_claim_ledger_curves_and_groups(record: RunRecord) -> None:
    page = _page(record, privacy_result())
    assert "Does the DP claim hold?" in page and "claim holds</span>" in page
    assert 'class="claim-box"' in page and 'role="alert"' not in page.split("Does the DP claim hold?")[1].split("Privacy ledger")[0]
    assert "<dt>ε by RDP</dt><dd>3.26</dd>" in page and "<dt>ε (the accountant training used)</dt><dd>3 by PRV</dd>" in page
    assert "<td class=\"num\">2.58</td><td class=\"num\">0.0994</td><td class=\"num\">300</td>" in page
    assert page.count("<polyline") == 2 and "LiRA, AUC 0.58" in page
    assert "Membership-inference risk by <code>sex</code>" in page
    assert "138 other held-out rows trained the attack&#39;s reference models" in page


def test_undefined_group_values_share_one_footnote_without_their_counts() -> None:
    view = privacy_view(privacy_result())
    (table,) = view.risk
    assert table.footnotes == (TOO_FEW,)
    female = table.rows[0]
    assert (female.members, female.non_members) == ("143", "30")
    assert [cell.note for cell in female.cells] == [None, 1, None, 1]
    assert view.columns == ("Loss AUC", "Loss TPR at 1% FPR", "LiRA AUC", "LiRA TPR at 1% FPR")


def test_a_violated_claim_is_an_alert(record: RunRecord) -> None:
    page = _page(record, privacy_result(violated=True))
    claim = page.split("Does the DP claim hold?")[1].split("Privacy ledger")[0]
    assert 'class="error-box" role="alert"' in claim and "claim violated</span>" in claim


def test_group_names_stay_text(record: RunRecord) -> None:
    page = _page(record, privacy_result(group=SCRIPT))
    assert SCRIPT not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.replace("<wbr>", ""), "shown as text"


def test_no_ledger_says_there_is_no_epsilon(record: RunRecord) -> None:
    result = privacy_result()
    bare = dataclasses.replace(result, artifacts={k: v for k, v in result.artifacts.items() if k not in ("ledger", "dp_audit")})
    page = _page(record, bare)
    assert "No privacy ledger" in page and "Does the DP claim hold?" not in page
    assert re.search(r"<polyline[^>]+>", page)
