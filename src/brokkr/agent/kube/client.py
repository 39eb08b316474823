"""The lightkube connection, from ``kubeconfig_path`` (settings, or $KUBECONFIG resolved by the
settings loader) or else the pod's service account.

An explicit kubeconfig that cannot be read is an error, never a silent fall-back to in-cluster
credentials (flaw 23).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2
from lightkube import AsyncClient, ConfigError, KubeConfig
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import SingleConfig

from brokkr.agent.kube import errors

FIELD_MANAGER = "brokkr-controller"
TIMEOUT_SECONDS = 10.0


class KubeConfigError(Exception):
    """No usable Kubernetes configuration."""


def load_config(kubeconfig_path: str | None) -> SingleConfig:
    try:
        config = (
            KubeConfig.from_file(kubeconfig_path)
            if kubeconfig_path
            else KubeConfig.from_service_account()
        )
        single = config.get()
    except (ConfigError, OSError) as exc:
        where = kubeconfig_path or "the in-cluster service account"
        raise KubeConfigError(f"cannot load Kubernetes configuration from {where}: {exc}") from exc
    if single is None:
        raise KubeConfigError(f"kubeconfig {kubeconfig_path} has no current context")
    return single


class KubeClient:
    """lightkube for resources, plus a raw HTTP client (same credentials) for discovery
    documents and ``/version``, which lightkube has no call for."""

    def __init__(self, config: SingleConfig, *, timeout: float = TIMEOUT_SECONDS) -> None:
        limit = httpx2.Timeout(timeout)
        # Kept for the connections of long-lived streams (``brokkr.agent.kube.streams``).
        self.config = config
        self.api = AsyncClient(config, timeout=limit, field_manager=FIELD_MANAGER)
        self._http = client_adapter.AsyncClient(config, client_adapter.ConnectionParams(limit))

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``path`` (e.g. ``/apis``) with query ``params``; raises ``KubeError``."""
        with errors.translated():
            response = await self._http.get(path, params=params)
        _raise_for(response)
        return response.json()

    async def get_text(
        self, path: str, params: Mapping[str, str], *, limit_bytes: int
    ) -> tuple[str, bool]:
        """GET a text document (a pod's log, which lightkube reads without ``previous`` and
        ``limitBytes``), reading at most ``limit_bytes`` whatever the server sends: the text
        (invalid UTF-8 replaced) and whether it was cut. Raises ``KubeError``."""
        body = bytearray()
        with errors.translated():
            async with self._http.stream("GET", path, params=params) as response:
                if response.is_error:
                    await response.aread()
                    _raise_for(response)
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit_bytes:
                        break
        return body[:limit_bytes].decode(errors="replace"), len(body) > limit_bytes

    async def aclose(self) -> None:
        await self.api.close()
        await self._http.aclose()


def _raise_for(response: httpx2.Response) -> None:
    """An error answer as ``KubeError``, from the Status object the API server sends."""
    if not response.is_error:
        return
    try:
        status = response.json()
    except ValueError:
        status = {}
    raise errors.from_status(response.status_code, status if isinstance(status, dict) else {})
