"""/auth/pak: whose PAK is this?"""

from __future__ import annotations

from brokkr.client.blocking import Blocking, blocking
from brokkr.client.http import Http
from brokkr.common import wire


class Auth:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def whoami(self) -> wire.AuthResponse:
        return await self._http.call("POST", "/api/v1/auth/pak", wire.AuthResponse)


class BlockingAuth(Blocking[Auth]):
    whoami = blocking(Auth.whoami)
