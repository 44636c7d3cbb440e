"""The one dependency every /v1 handler takes: its permission and its request context.

    Reader = Annotated[Context, context_for("agreements.read")]

    @router.get("/{agreement_id}", responses=problems(404))
    def get_agreement(ctx: Reader, agreement_id: AgreementId) -> AgreementView:
        return agreements.view(agreements.get_agreement(ctx.session, agreement_id))

`context_for(operation)` authenticates the bearer token, refuses a role the permission table
does not admit for `operation` (403), and opens the request's unit of work. The handler gets a
`Context`: the session, keyring, who is acting (identity, the request's clock reading and id),
the audit sink, the policies and the settings. Services raise; nothing here catches.

The unit of work commits when the handler returns and rolls back when it raises, before the
response is sent (scope="function"), so no answer leaves for work that did not commit. An
`AuditedDenial` (a refused read whose audit entry must persist) commits, then propagates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from exchange.api.denials import route_of
from exchange.api.permissions import Requirement
from exchange.db.engine import unit_of_work
from exchange.identity import Acting, Identity
from exchange.services import denials
from exchange.services.auditing import AuditSink, SqlAuditSink
from exchange.services.errors import AuditedForbidden
from exchange.services.published_policies import published_set
from exchange.settings import Settings
from keys.keyring import Keyring
from policies.engine import PolicySet

_SQL_SINK = SqlAuditSink()


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a handler works with besides its own inputs."""

    session: Session
    keyring: Keyring
    acting: Acting
    sink: AuditSink
    settings: Settings
    engine: Engine
    policy_override: PolicySet | None = None  # tests set `app.state.policies`

    @property
    def identity(self) -> Identity:
        return self.acting.identity

    @property
    def policies(self) -> PolicySet:
        """The published policy versions (cached by hash), read when a handler needs them."""
        if self.policy_override is not None:
            return self.policy_override
        return published_set(self.session)

    request: Request | None = None  # for an audited refusal raised by the context itself

    @property
    def contractor_id(self) -> str:
        """The calling contractor; refused for a principal bound to none (the schema forbids
        it for the contractor role; refuse rather than assume)."""
        if self.identity.contractor_id is None:  # audited in the request's own transaction
            route = route_of(self.request) if self.request is not None else "unmatched"
            denials.record_forbidden(self.session, self.acting, route, "not_bound_to_contractor")
            raise AuditedForbidden("principal is not bound to a contractor")
        return self.identity.contractor_id


def request_id(request: Request) -> str | None:
    """The server's id of this request (exchange.api.middleware makes it)."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def client_request_id(request: Request) -> str | None:
    """The caller's X-Request-ID, if it was valid; kept beside the server's, never as it."""
    value = getattr(request.state, "client_request_id", None)
    return value if isinstance(value, str) else None


def _session(request: Request) -> Iterator[Session]:
    with unit_of_work(request.app.state.session_factory) as session:
        yield session


def context_for(operation: str) -> Any:
    """`Depends(...)` giving the Context of a caller allowed to perform `operation`."""
    requirement = Requirement(operation)

    # `requirement` is local: a default value, because string annotations (PEP 563) are
    # resolved in the module's globals, where it does not exist
    def context(
        request: Request,
        session: Annotated[Session, Depends(_session, scope="function")],
        identity: Identity = Depends(requirement),
    ) -> Context:
        state = request.app.state
        sink: AuditSink | None = getattr(state, "audit_sink", None)  # tests set a twin
        policies: PolicySet | None = getattr(state, "policies", None)
        return Context(
            session=session,
            keyring=state.keyring,
            acting=Acting(identity, state.clock(), request_id(request),
                          client_request_id(request)),
            sink=sink if sink is not None else _SQL_SINK,
            settings=state.settings,
            engine=state.session_factory.kw["bind"],
            policy_override=policies,
            request=request,
        )

    return Depends(context)

