"""The conformance suite every lash backend runs (this repo's and third parties').

Subclass :class:`BackendTests`, override the ``backend`` fixture to build your backend,
and pytest collects every contract test::

    import pytest
    from lash.testing import BackendTests

    class TestMyBackend(BackendTests):
        @pytest.fixture
        def backend(self, tmp_path):
            backend = MyBackend(path=tmp_path)
            yield backend
            backend.close()
"""
