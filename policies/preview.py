"""A plain-text preview of what the contractor would receive for one case.

Sealed fields show as «sealed» (only the instructor's device opens them); every withheld
field is listed with its reason code and detail. Pure: Evaluation in, text out. It shows
unsealed values, so it is for the office's screen, never for logs.
"""

from __future__ import annotations

from policies.results import DisclosedValue, Evaluation

SEALED = "«sealed»"


def _show(value: DisclosedValue) -> str:
    return ", ".join(value) if isinstance(value, tuple) else str(value)


def render_preview(evaluation: Evaluation) -> str:
    policy = evaluation.policy
    lines = [
        f"purpose: {evaluation.purpose}",
        f"policy:  {policy.id} v{policy.version} sha256:{policy.sha256}"
        if policy
        else "policy:  none (the agreement does not cover this purpose)",
        "",
        "shared:" if evaluation.view else "shared:  nothing",
    ]
    width = max((len(d.field) for d in evaluation.decisions), default=0)
    for name, item in evaluation.view.items():
        shown = SEALED if item.sealed else _show(item.value)
        lines.append(f"  {name:<{width}}  {shown}  [{item.transform}]")
    withheld = evaluation.withheld
    lines.append("withheld:" if withheld else "withheld: nothing")
    for decision in withheld:
        lines.append(f"  {decision.field:<{width}}  {decision.reason.value}: {decision.detail}")
    if evaluation.consent_event_ids:
        lines.append("consent events relied on: " + ", ".join(evaluation.consent_event_ids))
    return "\n".join(lines) + "\n"
