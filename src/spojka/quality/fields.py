"""Canonical fields the matcher knows per entity, and how CSV column headers map onto them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from spojka.core.errors import ValidationError
from spojka.model.vocabulary import lookup_field
from spojka.quality.normalize import fold

ENTITIES = ("account", "contact")

#: canonical fields per entity; the order is the order of the explanation
ENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    "account": (
        "name",
        "ico",
        "dic",
        "email",
        "phone",
        "domain",
        "iban",
        "street",
        "house_number",
        "city",
        "zip",
        "country",
        "updated_at",
    ),
    "contact": (
        "first_name",
        "last_name",
        "full_name",
        "birth_date",
        "national_id",
        "email",
        "phone",
        "street",
        "house_number",
        "street2",
        "city",
        "zip",
        "region",
        "country",
        "company",
        "ico",
        "updated_at",
    ),
}

# Header words (folded) → canonical field, on top of the shared vocabulary. The vocabulary
# maps "name" to a company name; for contacts "name"/"jméno" means the full personal name.
_EXTRA_ALIASES: dict[str, dict[str, str]] = {
    "account": {
        "company": "name",
        "firma": "name",
        "nazev firmy": "name",
        "company_name": "name",
        "organizace": "name",
        "organization": "name",
        "vat": "dic",
        "vat_id": "dic",
        "ic dph": "dic",
        "icdph": "dic",
        "ic": "ico",
        "web": "domain",
        "website": "domain",
        "url": "domain",
        "ulice": "street",
        "ulica": "street",
        "adresa": "street",
        "address": "street",
        "street_address": "street",
        "cislo popisne": "house_number",
        "cp": "house_number",
        "mesto": "city",
        "obec": "city",
        "town": "city",
        "psc": "zip",
        "postcode": "zip",
        "postal_code": "zip",
        "zip_code": "zip",
        "zeme": "country",
        "stat": "country",
        "krajina": "country",
        "ucet": "iban",
        "bank_account": "iban",
        "cislo uctu": "iban",
        "updated": "updated_at",
        "modified": "updated_at",
        "zmeneno": "updated_at",
    },
    "contact": {
        "given_name": "first_name",
        "firstname": "first_name",
        "first": "first_name",
        "jmeno": "first_name",
        "krstne meno": "first_name",
        "surname": "last_name",
        "lastname": "last_name",
        "last": "last_name",
        "family_name": "last_name",
        "prijmeni": "last_name",
        "priezvisko": "last_name",
        "name": "full_name",
        "full name": "full_name",
        "cele jmeno": "full_name",
        "date_of_birth": "birth_date",
        "dob": "birth_date",
        "birthdate": "birth_date",
        "datum narozeni": "birth_date",
        "datum narodenia": "birth_date",
        "rodne cislo": "national_id",
        "rc": "national_id",
        "soc_sec_id": "national_id",
        "ssn": "national_id",
        "street_number": "house_number",
        "address_1": "street",
        "address_2": "street2",
        "suburb": "city",
        "state": "region",
        "kraj": "region",
        "firma": "company",
        "company": "company",
        "organizace": "company",
        "ulice": "street",
        "ulica": "street",
        "adresa": "street",
        "address": "street",
        "mesto": "city",
        "obec": "city",
        "psc": "zip",
        "postcode": "zip",
        "postal_code": "zip",
        "updated": "updated_at",
        "modified": "updated_at",
    },
}


def _lookup(entity: str, header: str) -> str | None:
    key = fold(header).strip()
    variants = {key, key.replace("_", " "), key.replace(" ", "_"), key.replace("-", "_")}
    for variant in variants:
        if variant in ENTITY_FIELDS[entity]:
            return variant
    for variant in variants:
        if hit := _EXTRA_ALIASES[entity].get(variant):
            return hit
    for variant in variants:
        hit = lookup_field(variant)
        if hit in ENTITY_FIELDS[entity] and not (entity == "contact" and hit == "name"):
            return hit
    return None


def auto_map(entity: str, headers: Sequence[str], *, id_column: str) -> dict[str, str]:
    """Canonical field → CSV column for every header whose name says what it is."""
    mapping: dict[str, str] = {}
    for header in headers:
        if header == id_column:
            continue
        field = _lookup(entity, header)
        if field is not None and field not in mapping:
            mapping[field] = header
    return mapping


def resolve_mapping(
    entity: str,
    headers: Sequence[str],
    *,
    id_column: str,
    explicit: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The field→column mapping to use: explicit ``--column`` pairs, else auto-mapped headers.

    Raises ``ValidationError`` naming an unknown entity, field or column.
    """
    if entity not in ENTITY_FIELDS:
        raise ValidationError(f"unknown entity {entity!r}; choose one of: {', '.join(ENTITIES)}")
    if id_column not in headers:
        raise ValidationError(
            f"id column {id_column!r} is not in the file; columns are: {', '.join(headers)}"
        )
    if explicit:
        for field, column in explicit.items():
            if field not in ENTITY_FIELDS[entity]:
                raise ValidationError(
                    f"unknown field {field!r} for {entity}; "
                    f"known fields: {', '.join(ENTITY_FIELDS[entity])}"
                )
            if column not in headers:
                raise ValidationError(
                    f"column {column!r} (for field {field!r}) is not in the file; "
                    f"columns are: {', '.join(headers)}"
                )
        return dict(explicit)
    mapping = auto_map(entity, headers, id_column=id_column)
    if not mapping:
        raise ValidationError(
            f"no column of the file could be mapped to a {entity} field; pass --column "
            f"FIELD=COLUMN (fields: {', '.join(ENTITY_FIELDS[entity])})"
        )
    return mapping
