"""The stored templates a worker sends from, parsed once, with the segments they show.

A body names the segments it shows (an item's block) by digest. They are read from the
store once per process and kept until :data:`SEGMENT_BYTES` of them are (then the kept
ones are let go and read again as needed). The segments of a claimed batch are read in
the claim's thread, before any of its rows is sent; a template needed again after it
left the cache is parsed again, and its segments read again if they left too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy import Engine

from publisher.delivery._result import DeliveryError
from publisher.delivery.message import DkimSigner, MessageTemplate, StoredTemplate
from publisher.store.outbox import load_segments

# Templates kept: a batch's bodies and the next batch's, claimed while it sends.
TEMPLATES = 512
# Segment bytes kept.
SEGMENT_BYTES = 64 * 1024 * 1024


class Templates:
    """Parsed templates by stored body, for one worker (thread-safe)."""

    def __init__(
        self,
        engine: Engine,
        *,
        dkim: DkimSigner | None,
        templates: int = TEMPLATES,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self._engine = engine
        self._dkim = dkim
        self._limit = templates
        self._segment_limit = segment_bytes
        self._templates: OrderedDict[bytes, MessageTemplate] = OrderedDict()
        self._segments: dict[bytes, bytes] = {}
        self._segment_bytes = 0
        self._lock = threading.Lock()

    def prepare(self, bodies: Iterable[bytes]) -> None:
        """Parse these bodies, reading the segments they show that are not kept (blocks:
        run it in a thread). A body that cannot be read is left for :meth:`get` to fail
        on when its row is sent."""
        with self._lock:
            new = [body for body in dict.fromkeys(bodies) if body not in self._templates]
        stored: dict[bytes, StoredTemplate] = {}
        for body in new:
            try:
                stored[body] = StoredTemplate.read(body)
            except DeliveryError:
                continue
        with self._lock:
            needed = frozenset().union(*(s.digests for s in stored.values()))
            missing = needed.difference(self._segments)
        self._keep(self._read(missing))
        for body, read in stored.items():
            try:
                self._add(body, read)
            except DeliveryError:
                continue

    def get(self, body: bytes) -> MessageTemplate:
        """The template of ``body``, parsed now if it is not kept (the store is read
        then if its segments are not kept either)."""
        with self._lock:
            template = self._templates.get(body)
            if template is not None:
                self._templates.move_to_end(body)
                return template
        return self._add(body, StoredTemplate.read(body))

    def _read(self, digests: Iterable[bytes]) -> dict[bytes, bytes]:
        wanted = set(digests)
        if not wanted:
            return {}
        with self._engine.connect() as conn:
            return load_segments(conn, wanted)

    def _keep(self, found: dict[bytes, bytes]) -> None:
        """Keep these segments; past the bound, the ones kept before are let go."""
        if not found:
            return
        with self._lock:
            if self._segment_bytes > self._segment_limit:
                self._segments.clear()
                self._segment_bytes = 0
            new = {d: v for d, v in found.items() if d not in self._segments}
            self._segment_bytes += sum(map(len, new.values()))
            self._segments.update(new)

    def _add(self, body: bytes, read: StoredTemplate) -> MessageTemplate:
        """Make and keep the template of ``body`` with the kept segments, reading them
        again if some were let go meanwhile."""
        try:
            with self._lock:
                template = read.template(self._segments, dkim=self._dkim)
        except DeliveryError:
            found = self._read(read.digests)
            self._keep(found)
            template = read.template(found, dkim=self._dkim)
        with self._lock:
            self._templates[body] = template
            while len(self._templates) > self._limit:
                self._templates.popitem(last=False)
        return template
