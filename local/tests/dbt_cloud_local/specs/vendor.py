"""
Write the prose-free copy of dbt Cloud's official OpenAPI specs that the contract tests read.

    python local/tests/dbt_cloud_local/specs/vendor.py <folder with openapi-v2.yaml and openapi-v3.yaml>
    make specs SPECS_FROM=<that folder>

Keeps what a machine reads (paths, methods, operation ids, parameters, request and response schemas,
components, security) and drops the prose (``description``, ``summary``, ``title``, ``example(s)``,
``externalDocs``), only where those are keywords: a property or parameter that happens to be *named*
``description`` stays. The output is ``openapi-v2.json`` and ``openapi-v3.json`` next to this file,
keys in the source's order, so a new snapshot of the specs shows up as a readable diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
VERSIONS = ("v2", "v3")
#: Keywords that only carry prose for people.
PROSE = frozenset({"description", "summary", "title", "example", "examples", "externalDocs"})
#: Keywords whose value maps names (of paths, fields, status codes, media types...) to objects.
NAME_MAPS = frozenset(
    {"paths", "properties", "schemas", "responses", "content", "securitySchemes", "parameters",
     "requestBodies", "headers", "variables", "patternProperties", "encoding"}
)  # fmt: skip
#: Keywords whose value is data, copied as it is (enum values, defaults, discriminator mappings...).
DATA = frozenset({"enum", "default", "required", "discriminator", "security", "tags", "x-tagGroups"})


def strip(node: Any, *, names: bool = False) -> Any:
    """``node`` without prose keywords; ``names``: the keys of ``node`` are names, not keywords."""
    if isinstance(node, list):
        return [strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: strip(value) for key, value in node.items()}
    kept = {}
    for key, value in node.items():
        if key in PROSE:
            continue
        if key in DATA:
            kept[key] = value
        else:
            kept[key] = strip(value, names=key in NAME_MAPS and isinstance(value, dict))
    return kept


def vendor(source: Path, version: str) -> dict[str, Any]:
    spec = yaml.safe_load((source / f"openapi-{version}.yaml").read_text())
    copy = strip({key: value for key, value in spec.items() if key != "info"})
    return {"openapi": copy.pop("openapi"), "info": {"title": f"dbt Cloud API {version}",
            "version": str(spec["info"].get("version", ""))}, **copy}  # fmt: skip


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not all((Path(argv[0]) / f"openapi-{v}.yaml").is_file() for v in VERSIONS):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        print("the folder must hold openapi-v2.yaml and openapi-v3.yaml", file=sys.stderr)
        return 2
    for version in VERSIONS:
        target = HERE / f"openapi-{version}.json"
        target.write_text(json.dumps(vendor(Path(argv[0]), version), indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {target} ({target.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
