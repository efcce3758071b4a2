"""`fmnist-search bench` (built by the benchmark issue)."""


def add_subcommand(sub, add_data) -> None:
    return None
