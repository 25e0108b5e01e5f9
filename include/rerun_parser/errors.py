"""Errors the rerun-parser raises: each names the artifact (file) and what is wrong with it.

A rerun that silently selects the wrong nodes is worse than one that refuses to start, so every
problem with the inputs surfaces as one of these, with a message an on-call engineer can act on.
"""

from __future__ import annotations


class RerunParserError(Exception):
    """Base class: anything that stops the rerun-parser from computing a command."""


class ArtifactError(RerunParserError):
    """An artifact is missing, unreadable, truncated, or not the dbt artifact it should be."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class MismatchedArtifactsError(ArtifactError):
    """run_results.json and manifest.json do not describe the same project state."""


class UnsupportedCommandError(RerunParserError):
    """The failed step ran a dbt command that ``dbt retry`` cannot replay (e.g. ``source freshness``)."""


class AmbiguousSelectionError(RerunParserError):
    """No selector dbt understands picks this node alone (it would drag other nodes into the rerun)."""
