"""The shortest path a user takes: open, append, commit, resume."""

import lash


def test_committed_session_resumes_identically_on_memory_backend():
    with lash.open({"store": {"backend": "memory"}}) as handle:
        session = handle.session("smoke")
        session.append_message("user", "hello")
        session.record_usage("agent", "m", lash.TokenUsage(input_tokens=3))
        assert session.commit().head_revision == 1
        resumed = handle.session("smoke")
        assert resumed.messages() == [{"role": "user", "content": "hello"}]
        assert resumed.usage_report().total.input_tokens == 3
