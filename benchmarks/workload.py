"""The DESIGN §7 reference workload, generated deterministically for every benchmark.

Turn ``t`` carries a ~1 KB user message and a ~2 KB assistant message of varied text, a
usage record and ~8 KB of execution state; every 10th turn also carries a new ~64 KB tool
catalogue and a new ~16 KB plugin snapshot. The text is built from a vocabulary of prose,
code and identifiers so that it compresses about as well as real agent transcripts do
(zlib about 2.5x), neither as well as repeated filler nor as badly as random bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SNAPSHOT_EVERY = 10

_PROSE = (
    "the a to of and in is for that it with on as this be are was by at from or an not have we can "
    "file function test error value request response session commit branch config model token cache "
    "user assistant tool call result output input state path node graph leaf head revision blob ref "
    "query database index table row column schema migration version build deploy server client "
    "should would could might must will need want check fix update add remove rename refactor move "
    "because however therefore although while when if then else return yield raise import class def "
    "quickly carefully exactly probably already still again instead only also just perhaps usually"
)
_CODE = (
    "load_session commit_turn parse_args HeadRevision SessionGraph read_path max_tokens retry_after "
    "user_id created_at __init__ asyncio.gather np.array os.path.join self.cache dict.get json.loads"
)
_WORDS = _PROSE.split()
_IDENTS = _CODE.split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_IDENTS) if rng.random() < 0.12 else rng.choice(_WORDS) for _ in range(rng.randint(6, 18))]
    if rng.random() < 0.15:
        words.append(f"{rng.randint(0, 10**6)}")
    if rng.random() < 0.08:
        words.append(f"`{rng.choice(_IDENTS)}({rng.choice(_WORDS)}={rng.randint(0, 999)})`")
    return " ".join(words).capitalize() + rng.choice(".?.!.:")


_POOL_SIZE = 20_000


def _sentence_pool(seed: int) -> list[str]:
    """Sentences drawn once; texts pick from them (fast, and rarely repeat within one blob)."""
    rng = random.Random(seed)
    return [_sentence(rng) + ("\n\n" if rng.random() < 0.1 else " ") for _ in range(_POOL_SIZE)]


_POOL = _sentence_pool(0)


def text(rng: random.Random, size: int) -> str:
    """About ``size`` bytes of varied, transcript-like text."""
    parts: list[str] = []
    length = 0
    while length < size:
        part = _POOL[rng.randrange(_POOL_SIZE)]
        parts.append(part)
        length += len(part)
    return "".join(parts)[:size]


def tool_catalogue(rng: random.Random, size: int = 64 * 1024) -> list[dict[str, Any]]:
    """~``size`` bytes (as JSON) of tool specs with JSON-schema parameters."""
    tools: list[dict[str, Any]] = []
    length = 0
    while length < size:
        name = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{len(tools)}"
        spec = {
            "name": name,
            "description": text(rng, rng.randint(200, 600)),
            "parameters": {
                "type": "object",
                "properties": {
                    f"{rng.choice(_WORDS)}_{i}": {
                        "type": rng.choice(["string", "integer", "boolean"]),
                        "description": text(rng, rng.randint(40, 120)),
                    }
                    for i in range(rng.randint(1, 5))
                },
            },
        }
        tools.append(spec)
        length += len(json.dumps(spec))
    return tools


def plugin_state(rng: random.Random, size: int = 16 * 1024) -> dict[str, Any]:
    """~``size`` bytes (as JSON) of plugin memory: notes, counters, recent ids."""
    notes = [text(rng, rng.randint(100, 400)) for _ in range(size // 300)]
    return {"notes": notes, "counters": {w: rng.randint(0, 10**5) for w in _WORDS[:40]}}


def execution_state(rng: random.Random, turn: int, size: int = 8 * 1024) -> bytes:
    """~``size`` bytes of runtime state: variables, a scratchpad and some binary handles."""
    scratch = text(rng, size - 1200)
    handles = rng.randbytes(512).hex()
    return json.dumps({"turn": turn, "scratchpad": scratch, "handles": handles}).encode()[:size]


@dataclass(frozen=True)
class Turn:
    """Everything one turn hands to the store."""

    index: int
    user: str
    assistant: str
    usage: tuple[int, int]
    execution_state: bytes
    tools: list[dict[str, Any]] | None
    plugin_state: dict[str, Any] | None

    @property
    def payload_bytes(self) -> int:
        """Raw bytes of what the turn asks to persist (text, state, snapshots as JSON)."""
        size = len(self.user.encode()) + len(self.assistant.encode()) + len(self.execution_state)
        if self.tools is not None:
            size += len(json.dumps(self.tools).encode())
        if self.plugin_state is not None:
            size += len(json.dumps(self.plugin_state).encode())
        return size


def turns(count: int, seed: int = 7) -> Iterator[Turn]:
    """The first ``count`` turns (1-based) of the reference workload."""
    rng = random.Random(seed)
    for index in range(1, count + 1):
        changes = index % SNAPSHOT_EVERY == 0 or index == 1
        yield Turn(
            index=index,
            user=text(rng, rng.randint(800, 1200)),
            assistant=text(rng, rng.randint(1600, 2400)),
            usage=(rng.randint(500, 50_000), rng.randint(50, 2000)),
            execution_state=execution_state(rng, index),
            tools=tool_catalogue(rng) if changes else None,
            plugin_state=plugin_state(rng) if changes else None,
        )
