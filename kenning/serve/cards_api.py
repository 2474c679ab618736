"""``/api/cards``: the web page's Quiz view, over the same calls as `kenning cards` and
`kenning quiz` (``cards.cards_for`` and ``cards.CardStore``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from kenning.errors import ConfigError

from .api import service

router = APIRouter(prefix="/api", tags=["api"])


class CardOut(BaseModel):
    id: str
    kind: str
    question: str
    answer: str
    choices: list[str]
    path: str
    heading: str
    start: int
    end: int
    title: str
    source: str
    link: str


class CardStats(BaseModel):
    active: int
    retired: int
    due: int
    new: int
    reviews: int


class DueResponse(BaseModel):
    cards: list[CardOut]
    stats: CardStats


class MakeRequest(BaseModel):
    paths: list[str] = Field(default_factory=list, description="indexed notes or folders")
    tag: str | None = None
    folder: str | None = None


class MakeResponse(BaseModel):
    cards: int
    notes: int
    added: int
    updated: int
    kept: int
    retired: int


class ReviewRequest(BaseModel):
    rating: int | None = Field(None, ge=1, le=4, description="1 again, 2 hard, 3 good, 4 easy")
    choice: str | None = Field(None, description="the option picked (multiple choice)")


class ReviewResponse(BaseModel):
    id: str
    rating: int
    correct: bool | None
    answer: str
    source: str
    link: str
    due: str


def _out(card: Any) -> dict[str, Any]:
    from kenning.cards.export import link

    return {**card.to_dict(), "source": " ".join(card.source.split()), "link": link(card)}


@router.get("/cards/due", response_model=DueResponse)
def due(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500, description="cards at most")] = 20,
) -> dict[str, Any]:
    """The cards to review now, due ones first (most overdue first), then new ones."""
    from kenning.cards import CardStore

    with CardStore(service(request).location, create=True) as store:
        return {"cards": [_out(c) for c in store.due(limit)], "stats": store.stats()}


@router.post("/cards", response_model=MakeResponse)
def make(request: Request, body: MakeRequest) -> dict[str, Any]:
    """Make (or bring up to date) the cards of the chosen notes, as `kenning cards` does."""
    from kenning.cards import Selection, cards_for

    selection = Selection(body.paths, body.tag, body.folder)
    with service(request).pool.borrow() as index:
        result = cards_for(index, selection)
    return {"cards": len(result.cards), "notes": result.made.notes, **result.changes.counts()}


@router.post("/cards/{card_id}/review", response_model=ReviewResponse)
def review(request: Request, card_id: str, body: ReviewRequest) -> dict[str, Any]:
    """Grade a card; a multiple-choice card given its ``choice`` grades itself (good when
    right, again when wrong). Returns the answer, its source and the next due date."""
    from kenning.cards import CardStore

    with CardStore(service(request).location) as store:
        card = store.card(card_id)
        correct = None
        rating = body.rating
        if body.choice is not None:
            if not card.choices:
                raise ConfigError("this card has no choices; send a rating")
            correct = body.choice == card.answer
            rating = rating or (3 if correct else 1)
        if rating is None:
            raise ConfigError("send a rating (1 to 4), or a choice for a multiple-choice card")
        due = store.review(card_id, rating, choice=body.choice)
    out = _out(card)
    return {
        "id": card_id,
        "rating": rating,
        "correct": correct,
        "answer": card.answer,
        "source": out["source"],
        "link": out["link"],
        "due": due.isoformat(),
    }
