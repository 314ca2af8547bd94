"""lash-openai-agents: the OpenAI Agents SDK's ``Session`` on lash.

``LashSession(session_id)`` stores an agent conversation as a lash session, on whatever
backend lash is configured with (SQLite, S3 blobs, Postgres, memory): one node per SDK item,
one commit per change, SDK branches as lash branches, run usage in the lash usage ledger and
compaction through lash's compaction frames.

``LashSession`` is imported on first use: lash loads this package's plugin
(:mod:`lash_openai_agents.plugin`) in every ``lash.open()``, which must not import the SDK.
"""

from typing import TYPE_CHECKING, Any

from lash_openai_agents.errors import AdapterFormatError, BranchError
from lash_openai_agents.plugin import FORMAT_VERSION

if TYPE_CHECKING:
    from lash_openai_agents.session import LashSession

__all__ = ["FORMAT_VERSION", "AdapterFormatError", "BranchError", "LashSession"]


def __getattr__(name: str) -> Any:
    if name == "LashSession":
        from lash_openai_agents.session import LashSession

        return LashSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
