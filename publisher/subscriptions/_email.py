"""Email addresses: a fast check for the usual ones, email-validator for the rest."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

# The WHATWG HTML "valid e-mail address" grammar, made as strict as email-validator:
# at most 64 characters before the @ and 254 in all (RFC 5321 §4.5.3.1), no leading,
# trailing or doubled dot before the @, at least two domain labels, a top-level label
# that starts with a letter and is not special-use (RFC 6761, RFC 6762, RFC 7686). What
# this accepts, email-validator accepts too; the rest (internationalized addresses among
# them) goes to email-validator, exact but ~80 µs an address: 8 s for 100,000.
_ATOM = r"[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_NOT_SPECIAL = r"(?!(?i:arpa|invalid|local|localhost|onion|test)\Z)"
_TLD = rf"{_NOT_SPECIAL}[a-zA-Z](?:[a-zA-Z0-9-]{{0,61}}[a-zA-Z0-9])?"
_EMAIL = re.compile(
    rf"(?=[^@]{{1,64}}@)(?=.{{1,254}}\Z){_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TLD}"
)


def fast_email_check(address: str) -> bool:
    """Whether ``address`` is certainly valid, without email-validator's cost."""
    return _EMAIL.fullmatch(address) is not None


def email_problem(address: str) -> str | None:
    """What is wrong with ``address``, or None when it is a valid address."""
    if _EMAIL.fullmatch(address) is not None:
        return None
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        if "<" in address:  # "A. Analyst <analyst@example.org>"
            return "a name and angle brackets are not allowed here; write the name under name:"
        return str(exc).rstrip(".")
    return None
