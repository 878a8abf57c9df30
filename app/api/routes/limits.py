"""``GET /limits``: the limits a client should know, from the settings (the page reads it)."""

from fastapi import APIRouter, Response

from api.deps import SettingsDep
from models import Limits

router = APIRouter(tags=["limits"])

# They change only when the app restarts with other settings.
CACHE_CONTROL = "public, max-age=60"


@router.get("/limits", response_model=Limits)
async def read_limits(settings: SettingsDep, response: Response) -> Limits:
    """The longest message the service accepts (MESSAGE_MAX_LENGTH)."""
    response.headers["Cache-Control"] = CACHE_CONTROL
    return Limits(message_max_length=settings.message_max_length)
