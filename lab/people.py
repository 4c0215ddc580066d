"""The one people fixture the whole lab is built from.

The AD seed, the Slack workspace and the Entra directory all read this list, so a person is the same
person everywhere: same mail (the key Slack and Entra are matched on), same manager chain, same groups.
Tests and the demo refer to people by ``key``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

Flag = Literal["disabled", "locked", "never_expires", "protected", "cloud_only", "canary"]
Group = Literal["helpdesk", "approvers", "privileged", "it_admins"]

REALM = "CORP.EXAMPLE.TEST"
DOMAIN = REALM.lower()
NETBIOS = "CORP"
BASE_DN = "DC=corp,DC=example,DC=test"

#: OUs created under the domain head, parent first.
OUS: tuple[str, ...] = (
    f"OU=Corp,{BASE_DN}",
    f"OU=Staff,OU=Corp,{BASE_DN}",
    f"OU=IT,OU=Corp,{BASE_DN}",
    f"OU=Admins,OU=Corp,{BASE_DN}",
    f"OU=Service Accounts,OU=Corp,{BASE_DN}",
    f"OU=Groups,OU=Corp,{BASE_DN}",
)
#: The OUs that hold ordinary users: the writeback account may reset passwords here and nowhere else.
USER_OUS: tuple[str, ...] = (
    f"OU=Staff,OU=Corp,{BASE_DN}",
    f"OU=IT,OU=Corp,{BASE_DN}",
    f"OU=Admins,OU=Corp,{BASE_DN}",
)

#: AD group name for each fixture group (``privileged`` is the built-in Domain Admins).
AD_GROUPS: dict[Group, str] = {
    "helpdesk": "Helpdesk",
    "approvers": "Reset Approvers",
    "it_admins": "IT Admins",
    "privileged": "Domain Admins",
}
#: Group the fine-grained password policy (min length 15) applies to.
PSO_GROUP: Group = "it_admins"
PSO_NAME = "IT Admins PSO"
PSO_MIN_LENGTH = 15

#: Words the lab's password filter (Samba's check password script) refuses, case-insensitively.
BANNED_WORDS: tuple[str, ...] = ("contoso", "password", "welcome", "summer", "winter", "letmein")

#: Entra object ids are GUIDs; deriving them from the key keeps them stable across lab runs.
_ENTRA_NAMESPACE = uuid.UUID("5d3c1f0e-7a8b-4c2d-9e6f-0a1b2c3d4e5f")

#: The domain's lockout policy, applied at seed time (Samba's fresh provision has none).
LOCKOUT_THRESHOLD = 5
LOCKOUT_DURATION_MINUTES = 30


@dataclass(frozen=True)
class Person:
    key: str
    given: str
    surname: str
    ou: str
    password: str
    title: str = ""
    department: str = ""
    manager: str | None = None
    groups: tuple[Group, ...] = ()
    entra_roles: tuple[str, ...] = ()
    flags: tuple[Flag, ...] = ()
    slack: bool = True
    #: The email address on the person's Slack profile when it is not their Entra mail (an alias, another
    #: domain): then no lookup by mail or UPN finds their Slack account, as happens in real workspaces.
    slack_mail: str | None = None
    #: Enrolled in Duo (with one phone that takes pushes), under the username ``key``.
    duo: bool = True
    #: The numbers the directory holds (Graph ``mobilePhone`` and ``businessPhones``): the only numbers a
    #: call-back may use.
    mobile_phone: str | None = None
    business_phones: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return f"{self.given} {self.surname}"

    @property
    def sam(self) -> str:
        return self.key

    @property
    def upn(self) -> str:
        return f"{self.key}@{DOMAIN}"

    @property
    def mail(self) -> str:
        return f"{self.key}@{DOMAIN}"

    @property
    def cn(self) -> str:
        return self.display_name

    @property
    def dn(self) -> str | None:
        """AD distinguished name, or None for a cloud-only person."""
        if "cloud_only" in self.flags:
            return None
        return f"CN={self.cn},{self.ou}"

    @property
    def entra_id(self) -> str:
        return str(uuid.uuid5(_ENTRA_NAMESPACE, self.key))

    @property
    def duo_username(self) -> str | None:
        return self.key if self.duo else None

    @property
    def phones(self) -> tuple[str, ...]:
        return (*((self.mobile_phone,) if self.mobile_phone else ()), *self.business_phones)

    def has(self, flag: Flag) -> bool:
        return flag in self.flags


@dataclass(frozen=True)
class ServiceAccount:
    key: str
    display_name: str
    password: str
    ou: str = f"OU=Service Accounts,OU=Corp,{BASE_DN}"
    purpose: str = field(default="")

    @property
    def dn(self) -> str:
        return f"CN={self.display_name},{self.ou}"

    @property
    def upn(self) -> str:
        return f"{self.key}@{DOMAIN}"


_STAFF = f"OU=Staff,OU=Corp,{BASE_DN}"
_IT = f"OU=IT,OU=Corp,{BASE_DN}"
_ADMINS = f"OU=Admins,OU=Corp,{BASE_DN}"

PEOPLE: tuple[Person, ...] = (
    Person("olga", "Olga", "Owens", _STAFF, "Ow3ns!Board#1", title="Chief Operating Officer",
           department="Management",
           mobile_phone="+1 206 555 0101", business_phones=("+1 206 555 0100",)),
    Person("mona", "Mona", "Manning", _STAFF, "Mann1ng!Sales#2", title="Sales Manager",
           department="Sales", manager="olga",
           mobile_phone="+1 206 555 0102"),
    Person("alice", "Alice", "Archer", _STAFF, "Arch3r!Bow#Tree", title="Account Executive",
           department="Sales", manager="mona",
           mobile_phone="+1 206 555 0103", business_phones=("+1 206 555 0150",)),
    Person("bob", "Bob", "Baker", _STAFF, "Bak3r!Bread#Loaf", title="Account Executive",
           department="Sales", manager="mona",
           mobile_phone="+1 206 555 0104"),
    Person("ivan", "Ivan", "Iverson", _IT, "Iv3rs0n!Approve#", title="IT Manager",
           department="IT", manager="olga", groups=("approvers",),
           mobile_phone="+1 206 555 0105", business_phones=("+1 206 555 0160",)),
    Person("hank", "Hank", "Hughes", _IT, "Hugh3s!Desk#Help", title="Service Desk Analyst",
           department="IT", manager="ivan", groups=("helpdesk",), entra_roles=("Helpdesk Administrator",),
           business_phones=("+1 206 555 0161",)),
    Person("hedy", "Hedy", "Holt", _IT, "H0lt!Desk#Second", title="Service Desk Analyst",
           department="IT", manager="ivan", groups=("helpdesk",), entra_roles=("Password Administrator",),
           business_phones=("+1 206 555 0162",)),
    Person("gina", "Gina", "Grant", _IT, "Gr4nt!Users#Adm", title="Identity Engineer",
           department="IT", manager="ivan", groups=("approvers",), entra_roles=("User Administrator",),
           mobile_phone="+1 206 555 0108"),
    Person("paula", "Paula", "Price", _ADMINS, "Pr1ce!Domain#Admin15", title="Domain Administrator",
           department="IT", manager="ivan", groups=("privileged", "it_admins"),
           entra_roles=("Global Administrator",), flags=("protected",),
           mobile_phone="+1 206 555 0109", business_phones=("+1 206 555 0163",)),
    Person("dave", "Dave", "Dormant", _STAFF, "D0rmant!Left#Co", title="Former Analyst",
           department="Finance", manager="olga", flags=("disabled",),
           mobile_phone="+1 206 555 0110"),
    Person("nora", "Nora", "Nevers", _STAFF, "N3vers!Expire#Pw", title="Kiosk Operator",
           department="Operations", manager="olga", flags=("never_expires",),
           business_phones=("+1 206 555 0170",)),
    Person("larry", "Larry", "Locke", _STAFF, "L0cke!Keys#Door", title="Warehouse Lead",
           department="Operations", manager="olga", flags=("locked",),
           mobile_phone="+1 206 555 0112"),
    Person("cora", "Cora", "Cloud", _STAFF, "Cl0ud!Only#Sky", title="Contractor",
           department="Marketing", manager="mona", flags=("cloud_only",),
           mobile_phone="+1 425 555 0113", duo=False),
    # Zoe's Slack profile carries another domain's address: Slack and Entra cannot be matched by email for her.
    Person("zoe", "Zoe", "Zimmer", _STAFF, "Z1mmer!Alias#Chat", title="Regional Sales Manager",
           department="Sales", manager="olga", groups=("approvers",), slack_mail="zoe.zimmer@corp-chat.example",
           mobile_phone="+1 206 555 0114"),
    Person("canary", "Writeback", "Canary", _STAFF, "Can4ry!Coal#Mine", title="Health probe",
           department="IT", flags=("canary", "never_expires"), slack=False, duo=False),
)

#: AD accounts that are not people: the writeback service (as Entra Connect's AD DS connector account)
#: and the read-only account the bot binds with.
WRITEBACK = ServiceAccount("svc-writeback", "Entra Connect Writeback", "Wr1teback!Sync#Acct",
                           purpose="reset-password rights on the user OUs only")
READER = ServiceAccount("svc-resetbot", "resetbot Reader", "R3ader!Bot#Reads",
                        purpose="reads users, groups and policy")
SERVICE_ACCOUNTS: tuple[ServiceAccount, ...] = (WRITEBACK, READER)

ADMIN_PASSWORD = "Adm1n!Lab#Samba"


def person(key: str) -> Person:
    for p in PEOPLE:
        if p.key == key:
            return p
    raise KeyError(f"no person {key!r} in the lab fixture")


def in_ad(p: Person) -> bool:
    return not p.has("cloud_only")


def members(group: Group) -> tuple[Person, ...]:
    return tuple(p for p in PEOPLE if group in p.groups)
