"""Form bodies of the console's POSTs."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request


async def read_form(request: Request) -> dict[str, str]:
    """application/x-www-form-urlencoded, parsed here (no multipart dependency for 6 fields);
    the first value of each field."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=20)
    return {name: values[0] for name, values in fields.items()}
