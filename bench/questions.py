"""A question instead of a guess, on the real stream's ``dev`` part (the ``test`` part stays unseen).

The default model decides every dev ticket as a webhook would (text and repository). A ticket gets
a question when the decision abstains or its top two teams are within the tie margin; the table
shows that share for several margins, and whether labeller A's team is one of the two teams asked.

How often the second decision is right is simulated, since no reporter answers here. Assumptions:
every asked reporter answers, truthfully, in one sentence about the team that really owns the
ticket (labeller A's). Three kinds of answer are tried:

- the reporter picks the option we offered for that team, quoting our words (when the true team
  is not among the two, they describe it with a sentence of its responsibilities chosen the same
  way). The model was trained on these very sentences, so this is the upper bound;
- another of the true team's clear responsibilities than the one we quoted (still our words);
- a real person's words: the title of another dev ticket labelled with the same team (the next
  one in the file), appended as the answer. Nothing of it was trained on.

All three are kinder than real reporters, who sometimes do not answer or answer vaguely: read the
figures as what the mechanism can do, not what a tracker will see.
"""

from __future__ import annotations

from bench import realstream
from bench.common import TRAINING_DATA, console, table
from model.dataset import load_training_data
from model.inference import Classifier
from model.questions import CLEAR_SHARE, ask_question, candidates, distinctive_sentence
from model.taxonomy import Taxonomy
from model.text import compose
from model.training import train

MARGINS = (0.05, 0.10, 0.15, 0.20, 0.30)
DEFAULT_MARGIN = 0.15


def _other_sentence(classifier: Classifier, taxonomy: Taxonomy, team_id: str, rival_id: str, quoted: str) -> str:
    """Another clear responsibility of the team than the one quoted (the reporter's own words, roughly)."""
    team, rival = taxonomy.get(team_id), taxonomy.get(rival_id)
    assert team is not None and rival is not None
    mine, theirs = taxonomy.ids.index(team_id), taxonomy.ids.index(rival_id)
    sentences = [s for s in team.responsibilities if s != quoted]
    proba = classifier.proba_many([(s, None) for s in sentences])
    clear = [s for s, row in zip(sentences, proba, strict=True) if row[mine] / (row[mine] + row[theirs]) >= CLEAR_SHARE]
    return (clear or sentences or [team.description])[0]


def run() -> dict[str, float]:
    dev = [t for t in realstream.load("dev") if t.a.team is not None]
    if not dev:
        console.print("[dim]real stream: texts not fetched; `python -m bench.fetch_public real_stream`[/dim]")
        return {}
    data = load_training_data(TRAINING_DATA)
    model = train(data.taxonomy, data.examples)
    taxonomy = data.taxonomy
    classifier = Classifier(
        model.pipeline,
        model.teams,
        model.threshold,
        "bench",
        20_000,
        model.team_thresholds,
        model.params.evidence_shrink,
    )
    first = classifier.decide_many([(t.item.id, t.title, t.body, t.item.repo) for t in dev])
    rows = []
    for margin in MARGINS:
        asked = [(t, d) for t, d in zip(dev, first, strict=True) if candidates(d, margin) is not None]
        among = [t for t, d in asked if t.a.team in (candidates(d, margin) or ())]
        wrong_first = sum(1 for t, d in asked if d.team != t.a.team)
        rows.append(
            [
                f"{margin:.2f}",
                f"{len(asked) / len(dev):.1%} ({len(asked)})",
                f"{len(among) / len(asked):.1%}" if asked else "-",
                f"{wrong_first / len(asked):.1%}" if asked else "-",
            ]
        )
    wrong_overall = sum(1 for t, d in zip(dev, first, strict=True) if d.team != t.a.team) / len(dev)
    console.print(
        table(
            f"Who would be asked: real stream dev, {len(dev)} labelled tickets"
            f" (the first decision is wrong on {wrong_overall:.1%} of all of them)",
            ["tie margin", "asked", "true team among the two", "first decision wrong among asked"],
            rows,
        )
    )
    figures: dict[str, float] = {}
    asked = [(t, d) for t, d in zip(dev, first, strict=True) if candidates(d, DEFAULT_MARGIN) is not None]
    figures["asked_share"] = len(asked) / len(dev)
    results = []
    by_team: dict[str, list[str]] = {}
    for t in dev:
        by_team.setdefault(t.a.team or "", []).append(t.item.id)
    titles = {t.item.id: t.title for t in dev}

    def real_words(ticket_id: str, team: str) -> str:
        """The title of the next dev ticket of the same team (not this one)."""
        same = by_team[team]
        return titles[same[(same.index(ticket_id) + 1) % len(same)]]

    for kind in ("picks our option", "another of our sentences", "a real reporter's words"):
        answers = []
        for ticket, decision in asked:
            pair = candidates(decision, DEFAULT_MARGIN)
            assert pair is not None and ticket.a.team is not None
            text = compose(ticket.title, ticket.body)
            rival = pair[1] if ticket.a.team == pair[0] else pair[0]
            true_team, rival_team = taxonomy.get(ticket.a.team), taxonomy.get(rival)
            assert true_team is not None and rival_team is not None
            quoted = distinctive_sentence(classifier.proba_many, taxonomy, true_team, rival_team, text)
            if kind == "another of our sentences":
                quoted = _other_sentence(classifier, taxonomy, ticket.a.team, rival, quoted)
            elif kind == "a real reporter's words":
                quoted = real_words(ticket.item.id, ticket.a.team)
            ask_question(classifier.proba_many, taxonomy, pair, "needs-triage", text)  # what the reporter reads
            answers.append((ticket.item.id, ticket.title, f"{ticket.body}\n\n{quoted}", ticket.item.repo))
        second = classifier.decide_many(answers)
        routed = [
            (t, d)
            for (t, _), d in zip(asked, second, strict=True)
            if not d.abstained and candidates(d, DEFAULT_MARGIN) is None
        ]
        right = sum(1 for t, d in routed if d.team == t.a.team)
        guessed = sum(1 for t, d in asked if d.team == t.a.team)
        results.append(
            [
                kind,
                str(len(asked)),
                f"{guessed / len(asked):.1%}",
                f"{len(routed) / len(asked):.1%}",
                f"{right / len(routed):.1%}" if routed else "-",
                f"{right / len(asked):.1%}",
            ]
        )
        key = {"picks our option": "option", "another of our sentences": "other", "a real reporter's words": "real"}[
            kind
        ]
        figures[f"{key}_routed"] = len(routed) / len(asked)
        figures[f"{key}_right"] = right / len(routed) if routed else 0.0
    console.print(
        table(
            f"The second decision, simulated (tie margin {DEFAULT_MARGIN})",
            ["the answer", "asked", "first guess right", "clear after the answer", "right when clear", "right overall"],
            results,
        )
    )
    return figures
