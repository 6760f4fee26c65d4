"""What an organisation's own history does for the rest of it: ``python -m bench history``.

``bench/org_history`` holds one organisation's public tickets (cds-snc, 124 tickets from 20
repositories, labelled by docs/TAXONOMY.md; texts fetched by ``python -m bench.fetch_public``
into ``texts.jsonl``). The older half, as ``ticket-router import`` would add it, joins the
training examples; the newer half is decided by the default model and by the model that learnt
the history, with and without the repository each ticket was filed in.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import ROOT, TRAINING_DATA, console, table
from bench.realstream import StreamReport, StreamTicket, evaluate, load
from model.dataset import LabelledTicket, load_training_data
from model.inference import Classifier, TicketInput
from model.training import train

FOLDER = ROOT / "bench" / "org_history"


def _as_example(ticket: StreamTicket, weight: float) -> LabelledTicket:
    assert ticket.a.team is not None
    return LabelledTicket(
        title=ticket.title,
        body=ticket.body,
        team=ticket.a.team,
        id=ticket.item.id,
        source="import:history",
        origin=f"history:{ticket.item.id}",
        weight=weight,
        repository=ticket.item.repo,
    )


def run() -> dict[str, float]:
    tickets = load(folder=FOLDER)
    if not tickets:
        console.print("[dim]org history: texts not fetched; `python -m bench.fetch_public org_history`[/dim]")
        return {}
    # Oldest first (undated tickets last); the first half is the history an organisation imports.
    ordered = sorted(tickets, key=lambda t: (t.item.date or "9999", t.item.id))
    half = len(ordered) // 2
    history = [t for t in ordered[:half] if t.a.team is not None]
    later = ordered[half:]
    data = load_training_data(TRAINING_DATA)
    repository = {t.item.id: t.item.repo for t in later}

    def deciders(c: Classifier) -> list[tuple[str, object]]:
        def placed(items: Sequence[tuple[str | None, str | None, str | None]]) -> list[object]:
            inputs: list[TicketInput] = [(i, title, body, repository[i or ""]) for i, title, body in items]
            return c.decide_many(inputs)  # type: ignore[return-value]

        return [("text", c.decide_many), ("text + repository", placed)]

    rows = []
    figures: dict[str, float] = {}
    for name, extra in (
        ("default model", []),
        (f"+ older half imported ({len(history)} tickets)", [_as_example(t, 1.0) for t in history]),
        ("+ older half as corrections (weight 3)", [_as_example(t, 3.0) for t in history]),
    ):
        model = train(data.taxonomy, [*data.examples, *extra])
        classifier = model.classifier("bench")
        for label, decide in deciders(classifier):
            report: StreamReport = evaluate(decide, later)  # type: ignore[arg-type]
            m = report.metrics
            routed = (
                "-"
                if report.routed_precision is None
                else f"{report.routed_share:.0%} at {report.routed_precision:.3f}"
            )
            rows.append(
                [
                    f"{name}, {label}",
                    str(m.n),
                    f"{m.accuracy:.3f}",
                    f"{m.macro_f1:.3f}",
                    f"{report.team_or_alt:.3f}",
                    f"{m.ece:.3f}",
                    routed,
                ]
            )
            figures[f"{name}|{label}|accuracy"] = m.accuracy
    labelled = sum(t.a.team is not None for t in later)
    console.print(
        table(
            f"One organisation's newer half ({len(later)} tickets, {labelled} with a team)",
            ["model", "tickets", "accuracy", "macro-F1", "team or alt", "ECE", "routed at precision"],
            rows,
        )
    )
    return figures


if __name__ == "__main__":
    run()
