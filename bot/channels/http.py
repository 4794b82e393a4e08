"""What the HTTP channels (the web API and the WeChat webhook) share: reading a request body within a limit."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request

from bot import replies


async def read_body(request: Request, limit: int) -> bytes:
    """Return the request body, or raise 413 as soon as it is known to exceed limit bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, replies.API_BODY_TOO_LARGE.format(limit=limit))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, replies.API_BODY_TOO_LARGE.format(limit=limit))
    return bytes(body)
