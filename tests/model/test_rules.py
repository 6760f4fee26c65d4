"""The routing rules engine: parsing, validation errors naming the rule, matching, bounded patterns."""

from __future__ import annotations

import pytest

from model.decision import Decision
from model.errors import RulesError
from model.rules import MAX_TITLE_CHARS, RuleFacts, RuleSet, parse_rules

TEAMS = ("Development", "DevOps", "SRE", "Platform")

RULES = """
[[rules]]
name = "dependency bots"
author = ["dependabot[bot]", "renovate[bot]"]
skip = true

[[rules]]
name = "terraform repos"
repository = ["acme/infra-*", "ops/*"]
team = "DevOps"

[[rules]]
name = "incident titles"
title = "(?i)^(sev[0-9]|incident)\\\\b"
labels = ["prod", "customer"]
team = "SRE"

[[rules]]
name = "jira platform"
tracker = "jira"
title = "cluster"
team = "Platform"
"""


def decision(team: str = "Development", abstained: bool = False) -> Decision:
    scores = dict.fromkeys(TEAMS, 0.1) | {team: 0.7}
    return Decision(team, 0.7, abstained, scores, [], "v1")


@pytest.fixture
def rules() -> RuleSet:
    return parse_rules(RULES, "rules.toml", TEAMS)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (RuleFacts(title="Bump x", author="Dependabot[bot]"), "dependency bots"),
        (RuleFacts(title="Bump x", author="dependabot"), None),
        (RuleFacts(title="anything", repository="acme/infra-eu"), "terraform repos"),
        (RuleFacts(title="anything", repository="acme/shop"), None),
        (RuleFacts(title="anything", repository="ops/dns/zones"), "terraform repos"),
        (RuleFacts(title="SEV1 checkout down", labels=("Prod",)), "incident titles"),
        (RuleFacts(title="SEV1 checkout down"), None),
        (RuleFacts(title="an incident report", labels=("prod",)), None),
        (RuleFacts(title="cluster upgrade", tracker="jira"), "jira platform"),
        (RuleFacts(title="cluster upgrade", tracker="gitlab"), None),
        (RuleFacts(title=None, author="renovate[bot]"), "dependency bots"),
    ],
)
def test_the_first_rule_whose_conditions_all_hold_decides(
    rules: RuleSet, facts: RuleFacts, expected: str | None
) -> None:
    rule = rules.first_match(facts)
    assert (rule.name if rule else None) == expected


def test_a_team_rule_keeps_the_model_scores_and_a_skip_keeps_the_decision(rules: RuleSet) -> None:
    routed = rules.apply(decision("Development"), RuleFacts(title="x", repository="ops/a"))
    assert (routed.team, routed.rule, routed.abstained, routed.skipped) == ("DevOps", "terraform repos", False, False)
    assert routed.scores == decision().scores and routed.confidence == 0.1
    skipped = rules.apply(decision("SRE", abstained=True), RuleFacts(title="x", author="renovate[bot]"))
    assert (skipped.team, skipped.rule, skipped.skipped, skipped.abstained) == ("SRE", "dependency bots", True, True)
    untouched = rules.apply(decision(), RuleFacts(title="x"))
    assert untouched == decision()


def test_a_rule_for_a_team_the_model_does_not_know_is_passed_over() -> None:
    rules = parse_rules('[[rules]]\nname = "r"\ntitle = "x"\nteam = "Gone"\n', "r.toml", None)
    assert rules.apply(decision(), RuleFacts(title="x")) == decision()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rules]]\nname = "bad"\ntitle = "(a"\nteam = "SRE"\n', "rule 'bad': title is not a usable regular"),
        ('[[rules]]\nname = "backref"\ntitle = "(a)\\\\1"\nteam = "SRE"\n', "rule 'backref': title is not a usable"),
        ('[[rules]]\nname = "who"\ntitle = "x"\nteam = "Ops"\n', "rule 'who' (rule 1): unknown team 'Ops'"),
        ('[[rules]]\nname = "both"\ntitle = "x"\nteam = "SRE"\nskip = true\n', "rule 'both' (rule 1): give exactly"),
        ('[[rules]]\nname = "none"\ntitle = "x"\n', "rule 'none' (rule 1): give exactly one outcome"),
        ('[[rules]]\nname = "all"\nteam = "SRE"\n', "rule 'all' (rule 1): no conditions"),
        (
            '[[rules]]\nname = "a"\ntitle = "x"\nskip = true\n[[rules]]\nname = "A"\ntitle = "y"\nskip = true\n',
            "rule 'A' (rule 2): the name is used by an earlier rule",
        ),
        ('[[rules]]\nname = "typo"\ntitel = "x"\nskip = true\n', "rules.toml: Object contains unknown field `titel`"),
        ("[[rules]\n", "rules.toml: not valid TOML"),
    ],
)
def test_a_bad_rules_file_is_refused_with_the_rule_named(text: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.toml", TEAMS)
    assert message in str(caught.value)
    assert str(caught.value).startswith("rules.toml")


def test_patterns_run_in_linear_time_on_hostile_titles_and_bodies() -> None:
    # Exponential under a backtracking engine; RE2 matches in linear time, and only the title is read.
    rules = parse_rules('[[rules]]\nname = "nested"\ntitle = "^(a+)+$"\nteam = "SRE"\n', "r.toml", TEAMS)
    # With Python's re, 30 characters already take minutes; here 320 kB is nothing.
    assert rules.first_match(RuleFacts(title="a" * 30 + "!")) is None
    assert rules.first_match(RuleFacts(title="a" * 900 + "!" + "a" * 320_000)) is None
    assert rules.first_match(RuleFacts(title="a" * 40)) is not None
    # A title longer than the bound is read up to the bound only.
    anchored = parse_rules('[[rules]]\nname = "end"\ntitle = "z$"\nteam = "SRE"\n', "r.toml", TEAMS)
    assert anchored.first_match(RuleFacts(title="a" * MAX_TITLE_CHARS + "z")) is None
