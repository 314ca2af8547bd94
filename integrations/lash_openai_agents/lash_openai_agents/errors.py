"""The errors LashSession adds to lash's own (all are :class:`lash.LashError`)."""

from __future__ import annotations

import lash


class BranchError(lash.LashError, ValueError):
    """A branch or turn that does not exist, or a branch name that cannot be used.

    Also a ``ValueError``, which is what the SDK's ``AdvancedSQLiteSession`` raises in these cases.
    """


class AdapterFormatError(lash.SchemaVersionError):
    """The session was written by a newer lash-openai-agents than this one; nothing was read or written."""

    def __init__(self, session_id: str, found: int, supported: int) -> None:
        self.session_id = session_id
        self.found = found
        self.supported = supported
        lash.StoreError.__init__(
            self,
            f"session {session_id!r} was written by a newer lash-openai-agents (format {found}; this one reads "
            f"formats up to {supported}); upgrade lash-openai-agents to use it",
        )
