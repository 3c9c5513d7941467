"""Atom, RSS and JSON feeds per language, field of work, country and combination."""

from publisher.feeds.build import BuiltFeed, FeedBuilder
from publisher.feeds.spec import FeedFormat, FeedSpec, UnknownFeed, standard_specs

__all__ = ["BuiltFeed", "FeedBuilder", "FeedFormat", "FeedSpec", "UnknownFeed", "standard_specs"]
