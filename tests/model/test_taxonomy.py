from __future__ import annotations

from pathlib import Path

import pytest

from model.errors import TaxonomyError
from model.taxonomy import load_taxonomy, parse_taxonomy

ROOT = Path(__file__).resolve().parents[2]

TWO_TEAMS = """
[[teams]]
id = "Web"
name = "Web team"
description = "Owns the website: pages, buttons, forms and styling."

[[teams]]
id = "Data"
name = "Data team"
description = "Owns the warehouse, ETL jobs and dashboards for analysts."
labels = { github = "area/data" }
"""


def test_default_taxonomy_has_the_four_teams_with_responsibilities() -> None:
    taxonomy = load_taxonomy(ROOT / "training_data")
    assert taxonomy.ids == ("Development", "DevOps", "SRE", "Platform")
    for team in taxonomy.teams:
        assert len(team.responsibilities) >= 10, team.id
        assert team.terms, team.id
        assert all(s.strip().endswith(".") for s in team.responsibilities), team.id


def test_labels_default_to_team_prefix_lowercased() -> None:
    taxonomy = parse_taxonomy(TWO_TEAMS)
    web, data = taxonomy.teams
    assert web.label_for("github") == "team:web"
    assert web.label_for("jira") == "team:web"
    assert data.label_for("github") == "area/data"
    assert taxonomy.team_for_label("github", "AREA/DATA") == "Data"
    assert taxonomy.team_for_label("github", "bug") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[teams]]\nid='A'\nname='A'\ndescription='only one'\n", "at least two teams"),
        ("[[teams]\n", "not valid TOML"),
        (TWO_TEAMS.replace('id = "Data"', 'id = "Web"'), "defined twice"),
        (TWO_TEAMS + "\ncolour = 'red'\n", "unknown field"),
        (TWO_TEAMS.replace('labels = { github = "area/data" }', 'labels = { trello = "x" }'), "unknown trackers"),
        (TWO_TEAMS.replace('id = "Data"', 'id = "has space"'), "id"),
        (
            TWO_TEAMS.replace('description = "Owns the website: pages, buttons, forms and styling."\n', ""),
            "description",
        ),
        (
            TWO_TEAMS.replace('labels = { github = "area/data" }', 'labels = { github = "team:web" }'),
            "same github label",
        ),
    ],
)
def test_invalid_taxonomies_are_refused_with_the_file_named(text: str, message: str) -> None:
    with pytest.raises(TaxonomyError, match=r"teams\.toml") as info:
        parse_taxonomy(text, "teams.toml", trackers=("github", "gitlab", "jira"))
    assert message in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="not found"):
        load_taxonomy(tmp_path)
