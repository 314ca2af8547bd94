"""lash-langgraph: a LangGraph checkpointer (``LashSaver``) that stores threads in lash.

``builder.compile(checkpointer=LashSaver.from_config("lash.toml"))`` stores every thread as lash
sessions on the configured backend; see the README for how checkpoints map onto lash.
"""

from lash_langgraph.mapping import NAMESPACE_PREFIX, THREAD_PREFIX, Address
from lash_langgraph.operations import ThreadExistsError, UnsupportedPruneStrategy
from lash_langgraph.records import FORMAT_VERSION
from lash_langgraph.saver import LashSaver

__all__ = [
    "FORMAT_VERSION",
    "NAMESPACE_PREFIX",
    "THREAD_PREFIX",
    "Address",
    "LashSaver",
    "ThreadExistsError",
    "UnsupportedPruneStrategy",
]
