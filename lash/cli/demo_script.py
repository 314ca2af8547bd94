"""The scripted agent conversation ``lash demo`` records: no network, no model, no randomness.

A developer and a coding assistant work through a small backlog of a web service. Turns
vary in length and shape (plain answers, tool calls with results, code), the tool registry
changes every few turns, and usage comes from a large and a small model, so the demo
exercises what a real agent loop stores.
"""

from __future__ import annotations

from typing import Any

import attrs

from lash.model import TokenUsage

MAIN_MODEL = "claude-sonnet-4-5"
SMALL_MODEL = "claude-haiku-4-5"
SYSTEM_PROMPT = (
    "You are a careful coding assistant working in the `orders-service` repository. "
    "Prefer small, reviewed changes; run the tests before you claim something works."
)


@attrs.frozen
class Task:
    """One backlog item: what the user asks, the file involved, what the assistant finds."""

    ask: str
    path: str
    finding: str
    change: str
    snippet: str


TASKS: tuple[Task, ...] = (
    Task(
        "The checkout test fails about one run in ten on CI. Can you find out why?",
        "tests/test_checkout.py",
        "the test builds two orders in the same millisecond and relies on `created_at` to sort them",
        "sort by the monotonic order id instead of the timestamp",
        "orders.sort(key=lambda o: o.id)",
    ),
    Task(
        "Payments to the new provider time out under load. Add retries, but don't double-charge anyone.",
        "orders/payments.py",
        "the client retries on every exception, including the ones raised after the charge was accepted",
        "retry only connection errors and send an idempotency key with every charge",
        'headers["Idempotency-Key"] = f"order-{order.id}-attempt"',
    ),
    Task(
        "GET /orders/{id} got slow this week, p95 went from 40 ms to 900 ms. What changed?",
        "orders/api.py",
        "a recent change loads every line item's product with a separate query (an N+1 pattern)",
        "prefetch the products in one query with `selectinload`",
        "stmt = select(Order).options(selectinload(Order.items).selectinload(Item.product))",
    ),
    Task(
        "We need a `cancelled_at` column on orders. Write the migration and backfill it.",
        "migrations/0042_cancelled_at.py",
        "cancelled orders only have a status today; the time is in the audit log table",
        "add a nullable column, backfill from the audit log in batches of 5,000 rows",
        'op.add_column("orders", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))',
    ),
    Task(
        "Please review the open PR that adds coupon stacking; I'm worried about rounding.",
        "orders/pricing.py",
        "discounts are rounded per coupon, so three 33% coupons can lose a cent against the ledger",
        "apply every discount on exact decimals and round once, at the end",
        "total = (subtotal * factor).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN)",
    ),
    Task(
        "The README still describes the old deploy script. Can you update the deploy section?",
        "README.md",
        "the section mentions `fab deploy`, which was replaced by the GitHub Actions workflow in March",
        "describe the workflow, its required secrets and how to roll back a release",
        "gh workflow run deploy.yml -f environment=staging",
    ),
    Task(
        "Customers in Japan see prices with two decimals. Yen has none. Where do we format money?",
        "orders/money.py",
        "`format_price` hard-codes two decimals instead of asking the currency for its exponent",
        "use the ISO 4217 minor-unit table the pricing module already ships",
        "places = MINOR_UNITS.get(currency, 2)",
    ),
    Task(
        "The nightly export job ran out of memory last night. It processes about 2M orders.",
        "jobs/export.py",
        "the job materialises the full query result in a list before writing the CSV",
        "stream rows with a server-side cursor and write them as they arrive",
        "for row in session.execute(stmt.execution_options(yield_per=1000)):",
    ),
)

OPENERS = ("Sure — ", "Good catch. ", "I looked into it. ", "Here is what I found. ", "")
CLOSERS = (
    "Want me to open a PR with this?",
    "I ran the affected tests and they pass locally.",
    "I'd also add a regression test so this does not come back.",
    "Let me know if you want the same fix applied elsewhere.",
)

BASE_TOOLS: tuple[dict[str, Any], ...] = (
    {"name": "read_file", "description": "Read a file of the repository.", "parameters": {"path": "string"}},
    {
        "name": "edit_file",
        "description": "Replace text in a file.",
        "parameters": {"path": "string", "patch": "string"},
    },
    {"name": "shell", "description": "Run a shell command in the repository.", "parameters": {"command": "string"}},
)
EXTRA_TOOLS: tuple[dict[str, Any], ...] = (
    {"name": "run_tests", "description": "Run pytest on a path.", "parameters": {"path": "string"}},
    {"name": "search_code", "description": "Search the code base.", "parameters": {"query": "string"}},
    {"name": "query_db", "description": "Run a read-only SQL query on staging.", "parameters": {"sql": "string"}},
    {"name": "open_pr", "description": "Open a pull request.", "parameters": {"title": "string", "body": "string"}},
)
TOOLS_CHANGE_EVERY = 4


def task_for(turn: int) -> Task:
    return TASKS[turn % len(TASKS)]


def tools_for(turn: int) -> list[dict[str, Any]]:
    """The application's tools at ``turn``: the base set plus one extra that rotates."""
    phase = turn // TOOLS_CHANGE_EVERY
    return [*BASE_TOOLS, EXTRA_TOOLS[phase % len(EXTRA_TOOLS)]]


def user_message(turn: int) -> str:
    task = task_for(turn)
    if turn < len(TASKS):
        return task.ask
    return f"Back to `{task.path}`: {task.ask[0].lower()}{task.ask[1:]} (follow-up #{turn // len(TASKS)})"


def uses_tool(turn: int) -> bool:
    return turn % 3 != 2


def tool_call(turn: int) -> dict[str, Any]:
    task = task_for(turn)
    return {"id": f"call_{turn:04d}", "name": "read_file", "arguments": {"path": task.path}}


def tool_result(turn: int) -> str:
    task = task_for(turn)
    lines = [f"# {task.path}", *(f"{n:>4}  ..." for n in range(1, 4)), f"{41 + turn:>4}  {task.snippet}"]
    return "\n".join(lines)


def assistant_message(turn: int) -> str:
    task = task_for(turn)
    opener = OPENERS[turn % len(OPENERS)]
    closer = CLOSERS[turn % len(CLOSERS)]
    body = (
        f"{opener}In `{task.path}` {task.finding}. The fix is to {task.change}:\n\n```python\n{task.snippet}\n```\n\n"
    )
    if turn % 2:
        body += (
            "The change is small and local; nothing else calls this code path, so the blast radius is "
            "limited to this module. "
        )
    return body + closer


def main_usage(turn: int) -> TokenUsage:
    """What the large model spent on ``turn``: the context grows, most of it is cached."""
    context = 1800 + 420 * turn
    return TokenUsage(
        input_tokens=350 + 17 * (turn % 7),
        output_tokens=220 + 31 * (turn % 5),
        cache_read_input_tokens=context,
        cache_write_input_tokens=420,
    )


def small_usage(turn: int) -> TokenUsage:
    """The small model summarising a tool result."""
    return TokenUsage(input_tokens=600 + 13 * turn, output_tokens=80)


def child_turns(parent_turn: int) -> list[tuple[str, str]]:
    """The sub-agent's (question, answer) exchanges: it researches the current task."""
    task = task_for(parent_turn)
    return [
        (f"Find every caller of the code in `{task.path}`.", "Three callers: the API handler, a job and a test."),
        ("Do any of them depend on the current behaviour?", f"Only the test does; it asserts that {task.finding}."),
        ("Summarise for the parent agent.", f"Safe to {task.change}; update the one test that pins the old behaviour."),
    ]


def child_usage(step: int) -> TokenUsage:
    return TokenUsage(input_tokens=900 + 150 * step, output_tokens=140, cache_read_input_tokens=300 * step)
