"""Rendering: localized emails (and, later, web pages) from Jinja2 templates and catalogs."""

from publisher.rendering.catalogs import Catalog, CatalogError, CatalogNotFound, load_catalog
from publisher.rendering.emails import (
    PERSONAL_MARKS,
    UNSUBSCRIBE_URL_MARK,
    EmailRenderer,
    RenderedEmail,
)
from publisher.rendering.environment import Environments

__all__ = [
    "PERSONAL_MARKS",
    "UNSUBSCRIBE_URL_MARK",
    "Catalog",
    "CatalogError",
    "CatalogNotFound",
    "EmailRenderer",
    "Environments",
    "RenderedEmail",
    "load_catalog",
]
