"""Search subcommands (filled in by the search issue)."""


def add_subcommands(sub, add_data) -> None:
    return None
