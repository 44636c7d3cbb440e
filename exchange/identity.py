"""Who is calling, for every door into the service (API, CLI, demo, console).

`Identity` is the authenticated principal as the flows see it; `Acting` is an identity doing
one piece of work: the clock reading the work runs at and the server's request id, which is
everything an audit entry needs to name its actor. No web framework, no database session:
the API, the CLI and the services all share these two values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from audit.entry import Actor

if TYPE_CHECKING:
    from exchange.db import models as m

OFFICE_ADMIN: Final = "office_admin"
COMMUNITY_CADRE: Final = "community_cadre"
CONTRACTOR: Final = "contractor"
AUDITOR: Final = "auditor"
ROLES: Final = frozenset({OFFICE_ADMIN, COMMUNITY_CADRE, CONTRACTOR, AUDITOR})
OFFICE_ROLES: Final = frozenset({OFFICE_ADMIN, COMMUNITY_CADRE})
# the audit entry detail naming the client certificate an actor presented (RFC 8705 x5t#S256)
CLIENT_CERT_DETAIL: Final = "client_cert.x5t_s256"
# the caller's own X-Request-ID, kept beside the server's request id (never as it)
CLIENT_REQUEST_DETAIL: Final = "client_request_id"


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated principal: its role and scope (a cadre's communities, a contractor)."""

    id: str
    name: str
    role: str
    display_name: str
    contractor_id: str | None = None
    community_ids: frozenset[str] = frozenset()
    # RFC 8705 x5t#S256 of the client certificate the TLS proxy forwarded; for a token bound
    # to a certificate, authentication checked it is that one (exchange.api.client_cert)
    cert_thumbprint: str | None = None

    @classmethod
    def from_row(cls, row: m.Principal) -> Identity:
        return cls(
            id=row.id,
            name=row.name,
            role=row.role,
            display_name=row.display_name,
            contractor_id=row.contractor_id,
            community_ids=frozenset(c.id for c in row.communities),
        )

    def sees_community(self, community_id: str) -> bool:
        """An office admin sees every community, a cadre hers, nobody else any."""
        if self.role == OFFICE_ADMIN:
            return True
        return self.role == COMMUNITY_CADRE and community_id in self.community_ids


@dataclass(frozen=True, slots=True)
class Acting:
    """An identity at work: the clock reading of this request (or command) and its id (the
    server's own); `client_request_id` is the id the caller sent, validated, if any."""

    identity: Identity
    now: datetime
    request_id: str | None = None
    client_request_id: str | None = None

    @property
    def actor(self) -> Actor:
        """The audit log names the principal by id and role only."""
        return Actor(self.identity.id, self.identity.role)

    @property
    def details(self) -> dict[str, str]:
        """What every entry of this actor records beyond its id and role: the client
        certificate it presented (a thumbprint, never the certificate), and the request id
        the caller chose (beside the server's `request_id`)."""
        details: dict[str, str] = {}
        if self.identity.cert_thumbprint:
            details[CLIENT_CERT_DETAIL] = self.identity.cert_thumbprint
        if self.client_request_id:
            details[CLIENT_REQUEST_DETAIL] = self.client_request_id
        return details
