"""gplinker: Chinese entity, relation and event extraction with GPLinker (Efficient
GlobalPointer heads; subject-object links; cliques).

`GPLinker` is imported lazily so that `gplinker --help` does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["GPLinker", "__version__"]

if TYPE_CHECKING:
    from gplinker.predict import GPLinker


def __getattr__(name: str) -> Any:
    if name == "GPLinker":
        from gplinker.predict import GPLinker

        return GPLinker
    raise AttributeError(f"module 'gplinker' has no attribute {name!r}")
