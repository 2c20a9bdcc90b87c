"""ASGI entry of the test project's server processes (``LiveServer(asgi=True)``: uvicorn)."""

import asyncio
import os
from typing import Any

from django.core.asgi import get_asgi_application

application = get_asgi_application()

if os.environ.get("WECHAT_OAUTH_TEST_CANCEL_AT_ONCE"):
    # test_asgi_shutdown's control: a cancelled request that returns at once, without waiting
    # for the exchange it started, lets a stopping server exit with the exchange in flight.
    from wechat_oauth.guard import async_exchange
    from wechat_oauth.guard.exchange_loop import exchange_loop

    async def _cancel_at_once(coroutine: Any) -> Any:
        return await asyncio.shield(asyncio.wrap_future(exchange_loop.submit(coroutine)))

    async_exchange.run_on_exchange_loop = _cancel_at_once
