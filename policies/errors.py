"""The one exception tree of `policies/`.

    PolicyError                      base of everything raised here
    ├── PolicyLoadError              a document is unreadable or invalid; carries every Problem
    │                                (file, line, field, message), one line each
    ├── PolicySetError               documents that are fine alone do not fit together
    │   ├── DuplicatePolicyError     two documents share one policy id and version
    │   └── UnknownPolicyError       an agreement names a policy that is not loaded
    └── EngineInputError             an engine input value was built wrong (names the field,
                                     never the value)

Messages never contain record values: load errors come from policy documents, and input
errors name only the field and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass


class PolicyError(Exception):
    """Base class of every error raised by `policies/`."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy document, located for the person fixing it."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line > 0 else self.file
        subject = f" {self.field}:" if self.field else ""
        return f"{where}:{subject} {self.message}"


class PolicyLoadError(PolicyError):
    """A policy document could not be loaded. `problems` lists every defect found."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        if not problems:
            raise ValueError("PolicyLoadError needs at least one problem")
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PolicySetError(PolicyError):
    """Policies that load alone but do not fit together, or a reference to a missing one."""


class DuplicatePolicyError(PolicySetError):
    """Two documents carry the same policy id."""


class UnknownPolicyError(PolicySetError):
    """An agreement maps a purpose to a policy id that is not loaded."""


class EngineInputError(PolicyError, ValueError):
    """An input value (record, consent, agreement, assignment, clock) is malformed."""
