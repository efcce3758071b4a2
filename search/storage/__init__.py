"""Where studies live and how workers share them: opening a storage from a URL (``open``),
riding out a lost connection (``retry``), the claim lease that keeps trial counts exact
(``claim``, ``lease``), and heartbeats that find dead workers' trials and retry them
(``liveness``)."""

from search.storage.open import DEFAULT_URL, load_study, open_storage, safe_url, scheme
from search.storage.retry import RETRY_S, StorageLost

__all__ = [
    "DEFAULT_URL",
    "RETRY_S",
    "StorageLost",
    "load_study",
    "open_storage",
    "safe_url",
    "scheme",
]
