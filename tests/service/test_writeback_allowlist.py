"""Write-back safety: whatever the decision and the ticket's labels, the router writes only labels it owns.

A property test over decisions (any team id, abstained or not), the labels a ticket carries, the
labels our earlier write-backs wrote and the protected labels: the requests every tracker would
send add only a team label or the triage label, remove only labels we added, and never touch a
protected one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.taxonomy import load_taxonomy
from service.trackers import registry
from service.trackers.base import PlannedRequest
from service.webhooks.labels import owned_labels, plan_labels, wanted_label

ROOT = Path(__file__).resolve().parent.parent.parent
TAXONOMY = load_taxonomy(ROOT / "training_data" / "teams.toml", registry.names())
TRIAGE = "needs-triage"
TRACKERS = registry.build(
    {
        kind.name: kind.settings_type().replace(
            **{"url": "https://tracker.example"} if "url" in kind.settings_type.__dataclass_fields__ else {}
        )
        for kind in registry.TRACKER_TYPES
    }
)
REFS = {"github": "github:acme/shop#12", "gitlab": "gitlab:15#23", "jira": "jira:OPS-12"}

team_labels = st.sampled_from(sorted({t.label_for(k) for t in TAXONOMY.teams for k in registry.names()}))
other_labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz:-_", min_size=1, max_size=12)
labels = st.lists(st.one_of(team_labels, other_labels, st.just(TRIAGE), st.just("Team:SRE")), max_size=6)


def written(request: PlannedRequest) -> tuple[set[str], set[str]]:
    """The labels one planned request adds and removes, in any tracker's format."""
    body: dict[str, Any] = request.json
    if request.method == "DELETE":
        return set(), {unquote(request.url.rsplit("/labels/", 1)[1])}
    if "labels" in body and request.method == "POST":
        return set(body["labels"]), set()
    if "update" in body:
        operations = body["update"]["labels"]
        return {o["add"] for o in operations if "add" in o}, {o["remove"] for o in operations if "remove" in o}
    added = set(filter(None, str(body.get("add_labels", "")).split(",")))
    return added, set(filter(None, str(body.get("remove_labels", "")).split(",")))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tracker=st.sampled_from(registry.names()),
    team=st.one_of(st.sampled_from(TAXONOMY.ids), st.text(max_size=10)),
    unclear=st.booleans(),
    present=labels,
    ours=labels,
    protected=labels,
)
def test_a_decision_never_writes_a_label_the_router_does_not_own(
    tracker: str, team: str, unclear: bool, present: list[str], ours: list[str], protected: list[str]
) -> None:
    owned = owned_labels(TAXONOMY, tracker, TRIAGE)
    wanted = wanted_label(TAXONOMY, tracker, team, unclear, TRIAGE)
    plan = plan_labels(wanted, present, ours, owned, protected)
    requests = TRACKERS[tracker].label_requests(REFS[tracker], plan.add, plan.remove)
    shielded = {label.casefold() for label in protected}
    mine = {label.casefold() for label in ours}
    for request in requests:
        added, removed = written(request)
        for label in added:
            assert label.casefold() in owned and label.casefold() not in shielded, label
        for label in removed:
            assert label.casefold() in owned, f"removed {label!r}, which the router does not own"
            assert label.casefold() in mine, f"removed {label!r}, which the router did not add"
            assert label.casefold() not in shielded, f"removed protected {label!r}"
            assert label in present


def test_the_owned_labels_are_the_team_labels_and_the_triage_label() -> None:
    assert owned_labels(TAXONOMY, "github", TRIAGE) == {
        "team:development",
        "team:devops",
        "team:sre",
        "team:platform",
        TRIAGE,
    }
    plan = plan_labels(
        "team:sre",
        ["team:devops", "team:platform", "bug"],
        ["team:devops"],
        {"team:sre", "team:devops", "team:platform"},
        ["team:sre"],
    )
    assert (plan.add, plan.remove) == (None, ["team:devops"]), "protected: never added; only ours removed"
