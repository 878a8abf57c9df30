"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), rendered from assets this app serves
itself under ``/docs/assets/``: the pinned package ``fastapi-offline`` ships Swagger UI's
and ReDoc's files, ``static/`` holds the script that starts Swagger UI. No CDN, no inline
script: the pages work on a host without internet, under a Content-Security-Policy that
allows scripts from the host only (nginx adds it, and lets only nginx_admin_allow in).
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
# Ours first, then the package's.
assets = StaticFiles(
    directory=Path(__file__).resolve().parents[2] / "static",
    packages=[("fastapi_offline", "static")],
)
router = APIRouter(include_in_schema=False)


def page(head: str, body: str) -> HTMLResponse:
    """A documentation page: its own assets only, no inline script."""
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Messages API</title>
<link rel="icon" href="{ASSETS_URL}/favicon.png">
{head}
</head>
<body>{body}</body>
</html>
"""
    )


SWAGGER_UI_HEAD = f"""<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
<script src="{ASSETS_URL}/swagger-ui-bundle.js" defer></script>
<script src="{ASSETS_URL}/swagger-init.js" defer></script>"""
SWAGGER_UI_BODY = '<div id="swagger-ui"></div>'
REDOC_BODY = f"""
<redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS_URL}/redoc.standalone.js"></script>
"""


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return page(SWAGGER_UI_HEAD, SWAGGER_UI_BODY)


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return page("", REDOC_BODY)
