"""Write the JSON Schema of every topic's model to `schemas/json/` (`python -m schemas.export`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas import TOPICS, DeadLetter

SCHEMA_DIR = Path(__file__).parent / "json"


def rendered_schemas() -> dict[str, str]:
    """File name → JSON text, for every topic and for the dead-letter envelope."""
    models: dict[str, Any] = dict(TOPICS.items())
    models["dlq"] = DeadLetter
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True)
        + "\n"
        for name, model in models.items()
    }


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for file_name, text in rendered_schemas().items():
        (SCHEMA_DIR / file_name).write_text(text, encoding="utf-8")
        print(f"wrote schemas/json/{file_name}")


if __name__ == "__main__":
    main()
