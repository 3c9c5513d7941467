"""The real SMTP server of the delivery tests, for the service's end-to-end tests."""

from __future__ import annotations

from tests.delivery.conftest import certificates, server, start_server

__all__ = ["certificates", "server", "start_server"]
