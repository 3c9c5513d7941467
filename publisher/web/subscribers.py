"""Which language a subscriber reads, for the pages that answer their messages.

Read from ``subscriptions.yaml`` and read again when the file changes; a broken edit
keeps the last good answers (and is logged), a missing file answers nothing.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from publisher.errors import PublisherError
from publisher.subscriptions import load_subscriptions
from publisher.taxonomy import Taxonomy
from publisher.unsubscribe import normalize_address

log = logging.getLogger(__name__)


class SubscriberLocales:
    def __init__(self, path: Path, *, taxonomy: Taxonomy, locales: list[str]) -> None:
        self._path = path
        self._taxonomy = taxonomy
        self._locales = locales
        self._stamp: tuple[int, int] | None = None
        self._by_address: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, address: str) -> str | None:
        self._refresh()
        return self._by_address.get(normalize_address(address))

    def _refresh(self) -> None:
        try:
            stat = self._path.stat()
        except OSError:
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                subscriptions = load_subscriptions(
                    self._path, taxonomy=self._taxonomy, locales=self._locales
                )
            except PublisherError as exc:
                log.warning("%s: keeping the languages read before: %s", self._path, exc)
                return
            self._by_address = {
                normalize_address(s.email): s.rule.locale for s in subscriptions.subscribers
            }
