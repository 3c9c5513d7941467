"""The web app: unsubscribe pages and the RFC 8058 one-click endpoint, health."""

from publisher.web.app import create_app

__all__ = ["create_app"]
