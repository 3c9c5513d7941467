"""What every command needs, loaded lazily and once: settings, taxonomy, store."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path

import click
from sqlalchemy import Engine

from publisher.errors import PublisherError, ValidationFailed
from publisher.rendering.emails import EmailRenderer
from publisher.settings import Settings, load_settings
from publisher.store import open_store
from publisher.subscriptions import Subscriptions, load_subscriptions
from publisher.taxonomy import Taxonomy, load_taxonomy


@dataclass
class Context:
    config_path: Path | None

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

    def close(self) -> None:
        """Give back the store's connections, if a command opened the store."""
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.dispose()

    @cached_property
    def subscriptions(self) -> Subscriptions:
        """The validated rules; a broken file stops the command before anything is sent."""
        settings = self.settings
        try:
            return load_subscriptions(
                settings.subscriptions, taxonomy=self.taxonomy, locales=settings.locales
            )
        except ValidationFailed as exc:
            raise click.ClickException(
                f"{settings.subscriptions} has problems; nothing was done:\n{exc}"
            ) from exc

    @cached_property
    def renderer(self) -> EmailRenderer:
        name = parseaddr(self.settings.sender.from_)[0] or self.settings.list_id
        return EmailRenderer(
            taxonomy=self.subscriptions.taxonomy,
            base_url=self.settings.base_url,
            organisation=name,
            templates=self.settings.templates,
        )
