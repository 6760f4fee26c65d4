"""Request and response bodies of the HTTP API (our own API: unknown fields are refused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from model.decision import Decision
from model.registry import Activation, Manifest
from model.training import TrainingParams

__all__ = [
    "Actor",
    "ActivateRequest",
    "BatchItem",
    "BatchRequest",
    "BatchResponse",
    "ClassifyRequest",
    "DecisionOut",
    "FeedbackOut",
    "FeedbackPage",
    "FeedbackRequest",
    "Health",
    "JobOut",
    "JobsResponse",
    "ModelDetail",
    "ModelSummary",
    "ModelsResponse",
    "Problem",
    "RowId",
    "ShadowReport",
    "TeamOut",
    "TeamsResponse",
    "TicketContext",
    "TrainRequest",
]

ItemId = Annotated[str, Meta(min_length=1, max_length=200)] | int

# Everything a request stores is bounded here, at the edge, so a refusal is a 422 naming the field
# (never a database error). Names and references are one line of printable text; ids are ours.
_ONE_LINE = r"^[^\x00-\x1f\x7f]+$"
Actor = Annotated[str, Meta(min_length=1, max_length=200, pattern=_ONE_LINE)]
RowId = Annotated[str, Meta(pattern=r"^[0-9a-f]{32}$", description="An id the service gave (32 hex digits)")]
TicketRef = Annotated[str, Meta(min_length=1, max_length=500, pattern=_ONE_LINE)]
StoredTitle = Annotated[str, Meta(max_length=1_000)]
StoredText = Annotated[str, Meta(max_length=100_000)]


class _Ticket(msgspec.Struct, forbid_unknown_fields=True):
    title: str | None = None
    body: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if self.text is not None and (self.title is not None or self.body is not None):
            raise ValueError("give either `text` or `title`/`body`, not both")
        if not any(part and part.strip() for part in (self.title, self.body, self.text)):
            raise ValueError("the ticket is empty: give a non-blank `title`, `body` or `text`")

    @property
    def parts(self) -> tuple[str | None, str | None]:
        """Title and body as the classifier takes them."""
        if self.text is not None:
            return self.text, None
        return self.title, self.body


class TicketContext(msgspec.Struct, forbid_unknown_fields=True):
    """Where a ticket comes from, when the caller knows: read as evidence, and by routing rules."""

    tracker: Annotated[str, Meta(min_length=1, max_length=32)] | None = None
    repository: Annotated[str, Meta(min_length=1, max_length=300)] | None = None
    author: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    labels: Annotated[list[Annotated[str, Meta(min_length=1, max_length=255)]], Meta(max_length=100)] = []


class ClassifyRequest(_Ticket, forbid_unknown_fields=True):
    """One ticket: ``title`` and ``body``, or ``text`` standing for both, and optionally its ``context``."""

    context: TicketContext | None = None

    @property
    def repository(self) -> str | None:
        """The repository the ticket was filed in, if the caller said."""
        return self.context.repository if self.context is not None else None


class BatchItem(ClassifyRequest, forbid_unknown_fields=True):
    """One ticket of a batch, with an optional id echoed in its decision."""

    id: ItemId | None = None


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Tickets to classify together; results come back in the same order."""

    items: Annotated[list[BatchItem], Meta(min_length=1)]


class BatchResponse(msgspec.Struct):
    """One decision per item, in input order."""

    results: list[Decision]


class FeedbackRequest(_Ticket, forbid_unknown_fields=True):
    """A correction: the right team for a decision (by its id) or for a ticket's text, and who says so.

    With ``decision_id`` the text is optional; without it the text is required. Only corrections
    with text can train the next model. The text is stored (NUL characters are dropped).
    """

    title: StoredTitle | None = None
    body: StoredText | None = None
    text: StoredText | None = None
    team: Annotated[str, Meta(min_length=1, max_length=64)] = ""
    decision_id: RowId | None = None
    actor: Actor | None = None
    ticket_ref: TicketRef | None = None

    def __post_init__(self) -> None:
        if not self.team:
            raise ValueError("`team` is required")
        if self.decision_id is None:
            super().__post_init__()
        elif self.text is not None and (self.title is not None or self.body is not None):
            raise ValueError("give either `text` or `title`/`body`, not both")


class DecisionOut(msgspec.Struct):
    """A decision of the audit trail: what was decided, by which model, for which ticket, and the teams
    people corrected it to since (oldest first)."""

    id: str
    created_at: float
    source: str
    ticket_ref: str | None
    team: str
    confidence: float
    abstained: bool
    scores: dict[str, float]
    model_version: str
    text_sha256: str
    corrected_to: list[str]


class FeedbackOut(msgspec.Struct):
    """A stored correction."""

    id: str
    created_at: float
    source: str
    team: str
    previous_team: str | None
    decision_id: str | None
    ticket_ref: str | None
    actor: str | None
    trainable: bool


class FeedbackPage(msgspec.Struct):
    """Corrections, newest first; pass ``next`` as ``before`` for the following page."""

    items: list[FeedbackOut]
    next: str | None


class TrainRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Options of a training job; ``params`` overrides the training parameters (the gate still judges)."""

    note: Annotated[str, Meta(max_length=500)] = ""
    activate: bool = True
    force: bool = False
    params: TrainingParams | None = None


class ActivateRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Activation options: ``force`` overrides the promotion gate."""

    force: bool = False
    actor: Actor | None = None


JobStatus = Literal["queued", "running", "succeeded", "refused", "failed"]


class JobOut(msgspec.Struct):
    """A training job: its status, what it is doing (``stage``) and how far along (``progress``, 0 to 1),
    and once finished its outcome (``result``) or why it failed or was refused (``error``).
    """

    id: str
    kind: str
    status: JobStatus
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    requested_by: str | None
    options: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    stage: str | None = None
    progress: float | None = None


class JobsResponse(msgspec.Struct):
    """Training jobs, newest first."""

    jobs: list[JobOut]


class ShadowReport(msgspec.Struct):
    """How a shadowed candidate compares with the active model on the same tickets."""

    version: str
    running: bool
    decisions: int
    agreement: float | None
    corrected: int
    active_right: int
    shadow_right: int


class TeamOut(msgspec.Struct):
    """A team of the taxonomy in use, with its label name in each tracker."""

    id: str
    name: str
    description: str
    responsibilities: list[str]
    terms: list[str]
    labels: dict[str, str]


class TeamsResponse(msgspec.Struct):
    """The taxonomy the active model routes to."""

    model_version: str
    teams: list[TeamOut]


class ModelSummary(msgspec.Struct):
    """A stored model version with its headline metrics."""

    version: str
    created_at: str
    active: bool
    teams: list[str]
    threshold: float
    n_examples: int
    accuracy: float | None
    macro_f1: float | None
    ece: float | None
    note: str


class ModelDetail(msgspec.Struct):
    """One version's manifest and whether it is the active one."""

    active: bool
    manifest: Manifest


class ModelsResponse(msgspec.Struct):
    """Every stored version, newest first, and the latest activations."""

    active: str | None
    shadow: str | None
    models: list[ModelSummary]
    activations: list[Activation]


class Health(msgspec.Struct, omit_defaults=True):
    """Liveness or readiness."""

    status: str
    model_version: str | None = None
    detail: str | None = None


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
