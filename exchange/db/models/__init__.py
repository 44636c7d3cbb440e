"""All tables of the exchange; importing this package registers them on `Base.metadata`."""

from exchange.db.models.agreement import Agreement, AgreementPurpose
from exchange.db.models.api_token import ApiToken
from exchange.db.models.assignment import Assignment, Booking
from exchange.db.models.community import Community
from exchange.db.models.consent import ConsentEvent
from exchange.db.models.console import ConsoleAccount, ConsoleSession, LoginEvent
from exchange.db.models.contractor import Contractor, ContractorKey
from exchange.db.models.feed import FeedCounter, Tombstone
from exchange.db.models.key_ops import BlindIndexMarker, KeyJob, PseudonymRemap
from exchange.db.models.minute_counts import MinuteCount
from exchange.db.models.office import FixedSetting
from exchange.db.models.policy import PublishedPolicy
from exchange.db.models.principal import Principal, principal_communities
from exchange.db.models.resident import Child, MaternalEpisode, Resident, ResidentDataKey
from exchange.db.models.reveal import Reveal
from exchange.db.models.service_record import ServiceRecord
from exchange.db.models.staged_import import StagedImport

__all__ = [
    "Agreement",
    "AgreementPurpose",
    "ApiToken",
    "Assignment",
    "BlindIndexMarker",
    "Booking",
    "Child",
    "Community",
    "ConsentEvent",
    "ConsoleAccount",
    "ConsoleSession",
    "Contractor",
    "ContractorKey",
    "FeedCounter",
    "FixedSetting",
    "KeyJob",
    "LoginEvent",
    "MaternalEpisode",
    "MinuteCount",
    "Principal",
    "PseudonymRemap",
    "PublishedPolicy",
    "Resident",
    "ResidentDataKey",
    "Reveal",
    "ServiceRecord",
    "StagedImport",
    "Tombstone",
    "principal_communities",
]
