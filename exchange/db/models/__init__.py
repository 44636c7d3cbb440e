"""All tables of the exchange; importing this package registers them on `Base.metadata`."""

from exchange.db.models.agreement import Agreement, AgreementPurpose
from exchange.db.models.assignment import Assignment, Booking
from exchange.db.models.community import Community
from exchange.db.models.consent import ConsentEvent
from exchange.db.models.console import ConsoleAccount, ConsoleSession, LoginEvent
from exchange.db.models.contractor import Contractor, ContractorKey
from exchange.db.models.feed import FeedCounter, Tombstone
from exchange.db.models.key_ops import KeyJob, PseudonymRemap
from exchange.db.models.principal import Principal, principal_communities
from exchange.db.models.resident import Child, MaternalEpisode, Resident, ResidentDataKey
from exchange.db.models.service_record import ServiceRecord

__all__ = [
    "Agreement",
    "AgreementPurpose",
    "Assignment",
    "Booking",
    "Child",
    "Community",
    "ConsentEvent",
    "ConsoleAccount",
    "ConsoleSession",
    "Contractor",
    "ContractorKey",
    "FeedCounter",
    "KeyJob",
    "LoginEvent",
    "MaternalEpisode",
    "Principal",
    "PseudonymRemap",
    "Resident",
    "ResidentDataKey",
    "ServiceRecord",
    "Tombstone",
    "principal_communities",
]
