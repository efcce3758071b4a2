"""The CLI runner and the tiny study preset of the search tests, for the bench's tests."""

from tests.search_tests.conftest import cli, in_tmp_path, tiny_preset  # noqa: F401
