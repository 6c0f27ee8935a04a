"""Vector stores for ``file_search``: a provider-agnostic service and one module per provider.

``VectorStoreService(settings, provider="openai")`` routes through ``service.PROVIDERS``; the
provider modules (and their SDKs) are imported on first use.
"""

from prompttracker.vector_stores.service import (
    PROVIDERS,
    FileCounts,
    FileError,
    Listing,
    VectorStore,
    VectorStoreFile,
    VectorStoreService,
    raise_for_failures,
)

__all__ = [
    "PROVIDERS",
    "FileCounts",
    "FileError",
    "Listing",
    "VectorStore",
    "VectorStoreFile",
    "VectorStoreService",
    "raise_for_failures",
]
