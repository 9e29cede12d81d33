"""The executive summary: three to six plain sentences generated from a scorecard's data.

Where the program is, what moved since the previous scorecard (what improved, what slipped), what is late, and
what needs a decision. Plain text: the PDF escapes it like any other text, the e-mail and the dashboard print it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scorecards.report import ScorecardReport


def _points(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _names(titles: list[str], limit: int = 2) -> str:
    shown = [f"“{title[:80]}”" for title in titles[:limit]]
    rest = len(titles) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")


def executive_summary(report: ScorecardReport) -> list[str]:
    """Three to six plain sentences: where the program is, what moved, what is late, what needs a decision."""
    now = report.current
    mark = "*" if now.level_waived else ""
    name = f" ({now.level_name})" if now.level_name else ""
    sentences = [
        f"As of {now.as_of:%d %B %Y} the program is at level {now.level}{mark}{name} with maturity index "
        f"{now.index:.2f}, a score of {_points(now.score)} and evidence covering {_points(now.coverage)} % of "
        "its requirements."
    ]
    before = report.previous
    if before is None:
        sentences.append("This is the first scorecard, so there is nothing earlier to compare with.")
    else:
        moves = []
        if now.score is not None and before.score is not None:
            delta = now.score - before.score
            moves.append(
                f"the score {'rose' if delta > 0 else 'fell'} {abs(delta):.1f} points"
                if abs(delta) >= 0.05
                else "the score held steady"
            )
        if now.level != before.level:
            moves.append(f"the level moved from {before.level} to {now.level}")
        sentence = f"Since the scorecard of {before.as_of:%d %B %Y} " + (
            " and ".join(moves) if moves else "the figures are unchanged"
        )
        if report.improved:
            sentence += (
                f"; {len(report.improved)} requirement(s) now pass, including {_names(report.improved)}"
            )
        if report.slipped:
            sentence += f"; {len(report.slipped)} slipped, including {_names(report.slipped)}"
        sentences.append(sentence + ".")
    late = [phase for phase in report.phases if phase.rag == "red"]
    if late:
        phase = late[0]
        forecast = f", forecast to finish {phase.forecast_end:%d %B %Y}" if phase.forecast_end else ""
        others = f" ({len(late) - 1} other phase(s) are red too)" if len(late) > 1 else ""
        sentences.append(
            f"Phase {phase.code} {phase.name} is red: {'; '.join(phase.reasons)}{forecast}{others}."
        )
    overdue_reviews = [document for document in report.documents if document.days_overdue]
    lateness = []
    if report.overdue:
        lateness.append(
            f"{report.overdue} item(s) are past their due date ({report.overdue_blocking} blocking)"
        )
    if overdue_reviews:
        document = max(overdue_reviews, key=lambda row: row.days_overdue or 0)
        lateness.append(
            f"the review of “{document.title}” was due {document.next_review} and is "
            f"{document.days_overdue} days overdue"
        )
    if lateness:
        text = " and ".join(lateness)
        sentences.append(text[0].upper() + text[1:] + ".")
    decisions = []
    if report.blocked:
        decisions.append(f"{report.blocked} blocked item(s) need unblocking")
    expiring = [waiver for waiver in report.waivers if waiver.days_left <= 30]
    if expiring:
        decisions.append(f"{len(expiring)} waiver(s) expire within 30 days and need renewing or closing")
    if report.blocking_next_level and report.next_level > now.level:
        decisions.append(
            f"{report.blocking_next_level} blocking requirement(s) stand between the program and level "
            f"{report.next_level}"
        )
    if overdue_reviews:
        decisions.append("the overdue document review needs an owner and a date")
    if decisions:
        sentences.append("Needs a decision: " + "; ".join(decisions) + ".")
    else:
        sentences.append("Nothing is waiting for an executive decision.")
    return sentences[:6]
