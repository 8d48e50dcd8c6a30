"""Text files the course generates for other systems (GitHub Actions workflows, Gradescope's shell
scripts), written as those systems read them, with ``%{name}`` placeholders: such files are full of
``$`` and ``{}``, which an f-string or ``string.Template``'s ``$`` would make every line escape."""
from __future__ import annotations

import string


class Placeholders(string.Template):
    """``%{name}`` is a value; ``%%`` is a literal ``%``."""
    delimiter = "%"


def render(template: str, **values: str) -> str:
    """``template`` with its placeholders filled; a placeholder without a value is an error."""
    return Placeholders(template).substitute(values)
