"""Bidi isolation for text a right-to-left page builds from numbers and words.

A number next to Urdu words joins the nearest left-to-right run ("Sandbox: 988 6 منٹ" reads
out of order); wrapped in U+2066 LEFT-TO-RIGHT ISOLATE … U+2069 POP DIRECTIONAL ISOLATE it
keeps its place. Text rendered through the catalogue is isolated there already (placeholders
and digits of the Urdu msgstrs); this is for text built in Python, such as chart labels.
"""

import re

from django.utils import translation

NUMBER = re.compile(r"[0-9](?:[0-9.,:/-]*[0-9])?")


def isolate_numbers(text: str) -> str:
    """The text with every run of digits isolated, on right-to-left pages only."""
    if not translation.get_language_bidi():
        return text
    return NUMBER.sub(lambda found: f"\u2066{found.group(0)}\u2069", text)
