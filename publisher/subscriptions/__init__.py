"""Subscriptions: who gets what, read from the administrators' ``subscriptions.yaml``."""

from publisher.subscriptions.loader import (
    check_subscriptions,
    load_subscriptions,
    parse_subscriptions,
)
from publisher.subscriptions.model import Format, Frequency, Rule, Subscriber, Subscriptions

__all__ = [
    "Format",
    "Frequency",
    "Rule",
    "Subscriber",
    "Subscriptions",
    "check_subscriptions",
    "load_subscriptions",
    "parse_subscriptions",
]
