"""What every command needs, loaded lazily and once: settings, taxonomy, store."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import click
from sqlalchemy import Engine

from publisher.errors import PublisherError
from publisher.settings import Settings, load_settings
from publisher.store import open_store
from publisher.taxonomy import Taxonomy, load_taxonomy


@dataclass
class Context:
    config_path: Path | None
    _engine: Engine | None = field(default=None, init=False)

    @cached_property
    def settings(self) -> Settings:
        try:
            return load_settings(self.config_path)
        except PublisherError as exc:
            raise click.ClickException(str(exc)) from exc

    @cached_property
    def taxonomy(self) -> Taxonomy:
        try:
            return load_taxonomy(self.settings.taxonomy)
        except PublisherError as exc:
            raise click.ClickException(str(exc)) from exc

    @cached_property
    def engine(self) -> Engine:
        try:
            return open_store(self.settings.database_url)
        except PublisherError as exc:
            raise click.ClickException(str(exc)) from exc
