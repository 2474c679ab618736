"""``GET /api/conflicts``: notes that disagree (``kenning conflicts --json``), and the one
call behind it that the MCP tool ``conflicts`` shares."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from .api import service
from .schemas import ConflictsResponse
from .service import Service

router = APIRouter(prefix="/api", tags=["api"])


def report(
    service: Service, paths: list[str] | None = None, limit: int | None = 20
) -> dict[str, Any]:
    """Bring the index's conflicts report up to date (only changed notes are checked) and
    return the most confident conflicts, with a side under ``paths`` if given."""
    from kenning.answer.conflict_report import ConflictReport

    with service.pool.borrow() as index, ConflictReport(index) as conflicts:
        stats = conflicts.update()
        found = conflicts.conflicts(paths or None, limit or None)
    return {
        "conflicts": [asdict(c) for c in found],
        "notes": stats.notes,
        "checked_notes": stats.checked_notes,
        "compared": stats.compared,
        "total": stats.conflicts,
    }


@router.get("/conflicts", response_model=ConflictsResponse)
def conflicts(
    request: Request,
    path: Annotated[
        list[str] | None,
        Query(description="only conflicts with a side under these indexed files or folders"),
    ] = None,
    limit: Annotated[int, Query(ge=0, le=10_000, description="at most this many; 0: all")] = 20,
) -> dict[str, Any]:
    """Pairs of notes that make different claims about the same thing (a number, date, name
    or yes/no), most confident first, each with both quotes, locations and which is newer."""
    return report(service(request), path, limit)
