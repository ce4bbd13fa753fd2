"""Print every config key with its default and meaning, as the README's Markdown table.

python scripts/config_keys.py
"""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from gplinker.config import Config


def rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += rows(ann, f"{prefix}{name}.")
            continue
        default = "required" if field.default is PydanticUndefined else f"`{field.default}`"
        if field.default_factory is not None:
            default = f"`{field.default_factory()}`"
        out.append(f"| `{prefix}{name}` | {default} | {field.description or ''} |")
    return out


if __name__ == "__main__":
    print("| key | default | meaning |\n|---|---|---|")
    print("\n".join(rows(Config)))
