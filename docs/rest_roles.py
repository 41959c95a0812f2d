"""A griffe extension for the API reference site (mkdocs.yml): the docstrings' reST roles as code.

The docstrings write :func:`create` and :class:`~lenetlab.train.Runner`; Markdown has no roles, so
each becomes a code span (`create`, `Runner`). Double-backtick literals are Markdown code spans already.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:[a-z]+:)?[a-z]+:`(~?)([^`]+)`")


class RestRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(
                lambda m: f"`{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}`", obj.docstring.value
            )
