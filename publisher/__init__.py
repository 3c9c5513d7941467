"""publisher: a multilingual newsletter and feed publisher.

The package reads as the data flow: ``sources`` → ``store`` → matching → rendering →
delivery, plus ``feeds``, ``scheduling``, ``web`` and ``cli``.
"""

__version__ = "0.1.0"
