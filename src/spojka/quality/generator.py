"""Real-looking Czech and Slovak companies and people with known duplicates.

Each generated row carries ``entity_id``, the real-world entity it describes, so a
matcher's pairwise links can be scored. Duplicates imitate the copies other systems keep:
legal-form variants, typos, missing diacritics, capitals, swapped fields, missing or
mistyped IČO, other phone and address writing; branches share their company's IČO but are
different entities (a provozovna is not its seat).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

SURNAMES_M = [
    "Novák",
    "Svoboda",
    "Novotný",
    "Dvořák",
    "Černý",
    "Procházka",
    "Kučera",
    "Veselý",
    "Horák",
    "Němec",
    "Marek",
    "Pospíšil",
    "Pokorný",
    "Hájek",
    "Král",
    "Jelínek",
    "Růžička",
    "Beneš",
    "Fiala",
    "Sedláček",
    "Doležal",
    "Zeman",
    "Kolář",
    "Navrátil",
    "Čermák",
    "Vaněk",
    "Urban",
    "Blažek",
    "Kříž",
    "Kovář",
    "Bartoš",
    "Vlček",
    "Polák",
    "Musil",
    "Kopecký",
    "Šimek",
    "Konečný",
    "Malý",
    "Holub",
    "Štěpánek",
    "Kadlec",
    "Dostál",
    "Soukup",
    "Šťastný",
    "Mareš",
    "Moravec",
    "Sýkora",
    "Tichý",
    "Valenta",
    "Horváth",
    "Kováč",
    "Varga",
    "Tóth",
    "Nagy",
    "Baláž",
    "Szabó",
    "Molnár",
    "Lukáč",
    "Kollár",
    "Oravec",
    "Hudák",
    "Bielik",
    "Šimko",
    "Mráz",
    "Gajdoš",
    "Kráľ",
    "Hrnčiar",
    "Jurčík",
    "Petráš",
    "Slovák",
    "Bednár",
    "Sloboda",
    "Štefánik",
]
FIRST_M = [
    "Jan",
    "Petr",
    "Jiří",
    "Josef",
    "Pavel",
    "Martin",
    "Tomáš",
    "Jaroslav",
    "Miroslav",
    "Zdeněk",
    "Václav",
    "Michal",
    "František",
    "Jakub",
    "Milan",
    "Karel",
    "Lukáš",
    "David",
    "Ondřej",
    "Vojtěch",
    "Marek",
    "Filip",
    "Adam",
    "Matěj",
    "Radek",
    "Ľubomír",
    "Juraj",
    "Peter",
    "Ján",
    "Štefan",
    "Jozef",
    "Michal",
    "Dušan",
    "Ivan",
    "Róbert",
    "Marián",
    "Vladimír",
    "Ladislav",
    "Igor",
    "Rastislav",
]
FIRST_F = [
    "Jana",
    "Marie",
    "Eva",
    "Hana",
    "Anna",
    "Lenka",
    "Kateřina",
    "Lucie",
    "Věra",
    "Alena",
    "Petra",
    "Veronika",
    "Jaroslava",
    "Tereza",
    "Martina",
    "Michaela",
    "Zuzana",
    "Ivana",
    "Monika",
    "Helena",
    "Mária",
    "Katarína",
    "Zuzana",
    "Ľudmila",
    "Lucia",
    "Andrea",
    "Simona",
    "Miroslava",
    "Gabriela",
    "Jarmila",
    "Barbora",
    "Kristína",
    "Dominika",
    "Soňa",
]
SECTORS = [
    "Stavby",
    "Elektro",
    "Agro",
    "Transport",
    "Logistika",
    "Software",
    "Strojírna",
    "Pekárna",
    "Autodoprava",
    "Truhlářství",
    "Instalace",
    "Reality",
    "Consulting",
    "Služby",
    "Obchod",
    "Kovovýroba",
    "Zahradnictví",
    "Tiskárna",
    "Textil",
    "Potraviny",
    "Development",
    "Energo",
    "Medical",
    "Data",
    "Systems",
    "Projekt",
    "Montáže",
    "Servis",
    "Technik",
    "Nábytek",
    "Plasty",
    "Sklo",
    "Dřevo",
    "Chemie",
    "Farma",
    "Účetnictví",
    "Poradenství",
    "Invest",
    "Trade",
    "Metal",
]
PLACES = [
    "Morava",
    "Vysočina",
    "Praha",
    "Brno",
    "Tatry",
    "Podunajsko",
    "Šumava",
    "Polabí",
    "Haná",
    "Slovácko",
    "Záhorie",
    "Liptov",
    "Orava",
    "Krkonoše",
    "Beskydy",
    "Jeseníky",
    "Podkrkonoší",
    "Spiš",
    "Gemer",
    "Kysuce",
    "Turiec",
    "Pohronie",
    "Bohemia",
    "Moravia",
    "Danubia",
    "Vltava",
    "Labe",
    "Ohře",
    "Dyje",
    "Váh",
    "Hron",
    "Nitra",
    "Ostravice",
]
FANCY = [
    "ALFA",
    "OMEGA",
    "Delta",
    "Proxima",
    "Unitex",
    "Technoplast",
    "Metrotech",
    "Inteco",
    "Bohemiaflex",
    "Synergie",
    "Avanti",
    "Progres",
    "Optimum",
    "Vektor",
    "Kvalita",
    "Tempo",
    "Horizont",
    "Orion",
    "Atlas",
    "Sirius",
    "Kometa",
    "Jiskra",
    "Zenit",
    "Granit",
    "Rubín",
    "Safír",
    "Jantar",
    "Korál",
    "Astra",
    "Nova",
    "Terra",
    "Aqua",
    "Ventura",
    "Integra",
    "Forte",
]
STREETS_CZ = [
    "Hlavní",
    "Nádražní",
    "Školní",
    "Komenského",
    "Masarykova",
    "Husova",
    "Palackého",
    "Sokolská",
    "Zahradní",
    "Polní",
    "Lipová",
    "Vinohradská",
    "Dlouhá",
    "Krátká",
    "Jiráskova",
    "Smetanova",
    "Tyršova",
    "Revoluční",
    "Průmyslová",
    "Žižkova",
    "Nerudova",
    "Havlíčkova",
    "Riegrova",
    "Bezručova",
    "Wolkerova",
    "Jungmannova",
    "Purkyňova",
    "Štefánikova",
]
STREETS_SK = [
    "Hlavná",
    "Štúrova",
    "Hviezdoslavova",
    "Kollárova",
    "Mierová",
    "Záhradná",
    "Školská",
    "Nádražná",
    "Partizánska",
    "Družstevná",
    "Jesenského",
    "Rázusova",
    "Bernolákova",
    "Kukučínova",
    "Komenského",
    "Sládkovičova",
]
CITIES_CZ = (
    ("Praha", ("110 00", "120 00", "130 00", "140 00", "150 00", "160 00", "170 00", "190 00")),
    ("Brno", ("602 00", "612 00", "615 00", "628 00")),
    ("Ostrava", ("702 00", "708 00", "709 00")),
    ("Plzeň", ("301 00", "312 00", "326 00")),
    ("Liberec", ("460 01", "460 07")),
    ("Olomouc", ("779 00", "772 00")),
    ("České Budějovice", ("370 01", "370 05")),
    ("Hradec Králové", ("500 02", "500 03")),
    ("Pardubice", ("530 02", "530 03")),
    ("Zlín", ("760 01", "760 05")),
    ("Jihlava", ("586 01",)),
    ("Kladno", ("272 01",)),
    ("Opava", ("746 01",)),
    ("Třebíč", ("674 01",)),
    ("Kolín", ("280 02",)),
    ("Jevíčko", ("569 43",)),
)
CITIES_SK = (
    ("Bratislava", ("811 01", "821 08", "831 04", "841 01", "851 01")),
    ("Košice", ("040 01", "040 11")),
    ("Žilina", ("010 01", "010 08")),
    ("Nitra", ("949 01",)),
    ("Prešov", ("080 01",)),
    ("Banská Bystrica", ("974 01",)),
    ("Trnava", ("917 01",)),
    ("Trenčín", ("911 01",)),
    ("Martin", ("036 01",)),
    ("Poprad", ("058 01",)),
)
LEGAL_VARIANTS = {
    "s.r.o.": ("s.r.o.", "spol. s r.o.", "s. r. o.", "sro", "spol. s r. o.", "S.R.O."),
    "a.s.": ("a.s.", "a. s.", "akciová společnost", "A.S."),
    "v.o.s.": ("v.o.s.", "v. o. s.", "veř. obch. spol."),
    "k.s.": ("k.s.", "k. s."),
    "družstvo": ("družstvo",),
}
LEGAL_WEIGHTS = (("s.r.o.", 70), ("a.s.", 15), ("v.o.s.", 4), ("k.s.", 3), ("družstvo", 3), ("", 5))
SYSTEMS = ("crm", "erp", "pm")


def strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def ico_check_digit(first7: str) -> int:
    total = sum(int(d) * w for d, w in zip(first7, range(8, 1, -1), strict=True))
    return (11 - total % 11) % 10


def make_ico(rng: random.Random) -> str:
    first7 = f"{rng.randrange(0, 10_000_000):07d}"
    return first7 + str(ico_check_digit(first7))


def make_sk_vat(rng: random.Random) -> str:
    while True:
        number = rng.randrange(1_000_000_000, 9_999_999_999)
        number -= number % 11
        text = str(number)
        if len(text) == 10 and text[0] != "0" and text[2] in "234789":
            return "SK" + text


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.random()
    letters = "abcdeghiklmnoprstuvyz"
    if kind < 0.3:
        return text[:i] + text[i + 1 :]
    if kind < 0.55:
        return text[:i] + rng.choice(letters) + text[i:]
    if kind < 0.8:
        return text[:i] + rng.choice(letters) + text[i + 1 :]
    if text[i] == " " or text[i + 1] == " ":
        return text
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _slug(text: str) -> str:
    return "".join(ch for ch in strip_diacritics(text).lower() if ch.isalnum())


@dataclass(slots=True)
class _Company:
    entity_id: str
    base: str
    legal: str
    ico: str | None
    dic: str | None
    domain: str
    email: str
    phone: str
    street: str
    house: str
    orientation: str | None
    city: str
    zip: str
    country: str


def _zip(rng: random.Random, bases: tuple[str, ...]) -> str:
    """A PSČ of the city: its post-office base with one of ten delivery-district endings."""
    base = rng.choice(bases)
    return base[:5] + str(rng.randrange(10)) if rng.random() < 0.7 else base


def _phone(rng: random.Random, country: str) -> str:
    tail = f"{rng.randrange(0, 1000):03d} {rng.randrange(0, 1000):03d}"
    if country == "SK":
        return f"+421 9{rng.randrange(0, 50):02d} {tail}"
    return f"+420 {rng.choice('67')}{rng.randrange(0, 100):02d} {tail}"


def _company_base(rng: random.Random) -> str:
    template = rng.random()
    if template < 0.25:
        return f"{rng.choice(SECTORS)} {rng.choice(SURNAMES_M)}"
    if template < 0.4:
        return f"{rng.choice(SURNAMES_M)} a syn"
    if template < 0.6:
        return f"{rng.choice(SECTORS)} {rng.choice(PLACES)}"
    if template < 0.8:
        return f"{rng.choice(FANCY)} {rng.choice(SECTORS)}"
    if template < 0.9:
        return f"{rng.choice(SURNAMES_M)} & {rng.choice(SURNAMES_M)}"
    return f"{rng.choice(FANCY)} {rng.choice(PLACES)} {rng.choice(SECTORS)}"


def _new_company(
    rng: random.Random, entity_id: str, used_icos: set[str], used_domains: set[str]
) -> _Company:
    country = "SK" if rng.random() < 0.3 else "CZ"
    base = _company_base(rng)
    legal = rng.choices([x for x, _ in LEGAL_WEIGHTS], [w for _, w in LEGAL_WEIGHTS])[0]
    ico: str | None = None
    if rng.random() < 0.92:  # sole traders abroad and prospects often have none on record
        candidate = make_ico(rng)
        while candidate in used_icos:
            candidate = make_ico(rng)
        used_icos.add(candidate)
        ico = candidate
    dic = None
    if ico and rng.random() < 0.8:
        dic = "CZ" + ico if country == "CZ" else make_sk_vat(rng)
    city, zips = rng.choice(CITIES_SK if country == "SK" else CITIES_CZ)
    streets = STREETS_SK if country == "SK" else STREETS_CZ
    domain = f"{_slug(base)}.{country.lower()}"
    while domain in used_domains:  # a web domain belongs to one company
        domain = f"{_slug(base)}{rng.randrange(1, 999)}.{country.lower()}"
    used_domains.add(domain)
    mailbox = rng.choice(
        ("info", "obchod", "kancelaria" if country == "SK" else "kancelar", "office")
    )
    return _Company(
        entity_id=entity_id,
        base=base,
        legal=legal,
        ico=ico,
        dic=dic,
        domain=domain,
        email=f"{mailbox}@{domain}",
        phone=_phone(rng, country),
        street=rng.choice(streets),
        house=str(rng.randrange(1, 3000)),
        orientation=str(rng.randrange(1, 120)) if rng.random() < 0.5 else None,
        city=city,
        zip=_zip(rng, zips),
        country=country,
    )


def _branch_of(rng: random.Random, parent: _Company, entity_id: str, taken: set[str]) -> _Company:
    other_city, zips = rng.choice(CITIES_SK if parent.country == "SK" else CITIES_CZ)
    while other_city in taken:
        other_city, zips = rng.choice(CITIES_SK if parent.country == "SK" else CITIES_CZ)
    word = rng.choice(
        ("pobočka", "provozovna", "závod") if parent.country == "CZ" else ("pobočka", "prevádzka")
    )
    branch = _Company(
        entity_id=entity_id,
        base=f"{parent.base}",
        legal=f"{parent.legal}, {word} {other_city}".strip(", "),
        ico=parent.ico,
        dic=parent.dic,
        domain=parent.domain,
        email=f"{_slug(other_city)}@{parent.domain}",
        phone=_phone(rng, parent.country),
        street=rng.choice(STREETS_SK if parent.country == "SK" else STREETS_CZ),
        house=str(rng.randrange(1, 3000)),
        orientation=None,
        city=other_city,
        zip=_zip(rng, zips),
        country=parent.country,
    )
    taken.add(other_city)
    return branch


def _render_company(rng: random.Random, c: _Company, *, noisy: bool) -> dict[str, str]:
    legal, _, branch = c.legal.partition(", ")
    if noisy and legal in LEGAL_VARIANTS:
        legal = rng.choice(LEGAL_VARIANTS[legal])
    name = c.base
    if noisy and rng.random() < 0.3:
        name = _typo(rng, name)
    name = f"{name}{',' if noisy and rng.random() < 0.3 and legal else ''} {legal}".strip()
    if branch:
        name = f"{name}, {branch}"
    if noisy:
        roll = rng.random()
        if roll < 0.25:
            name = strip_diacritics(name)
        elif roll < 0.35:
            name = name.upper()
        elif roll < 0.4:
            name = name.lower()
    ico = c.ico or ""
    if noisy and ico:
        roll = rng.random()
        if roll < 0.2:
            ico = ""
        elif roll < 0.28:
            ico = _typo_digits(rng, ico)
        elif roll < 0.35:
            ico = ico.lstrip("0") or ico
        elif roll < 0.4:
            ico = f"{ico[:3]} {ico[3:5]} {ico[5:]}"
    dic = c.dic or ""
    if noisy and dic and rng.random() < 0.4:
        dic = ""
    phone = c.phone
    if noisy:
        roll = rng.random()
        digits = phone.replace(" ", "")
        if roll < 0.25:
            phone = ""
        elif roll < 0.45:
            phone = digits[4:]  # national form
        elif roll < 0.6:
            phone = "00" + digits[1:]
    email = c.email
    if noisy:
        roll = rng.random()
        if roll < 0.3:
            email = ""
        elif roll < 0.4:
            email = email.upper()
        elif roll < 0.5:
            email = "fakturace@" + c.domain
    number = c.house + (f"/{c.orientation}" if c.orientation else "")
    if noisy and c.orientation and rng.random() < 0.3:
        number = c.house
    street = f"{c.street} {number}"
    if noisy and rng.random() < 0.1:
        street = _typo(rng, street)
    zip_code = c.zip
    if noisy and rng.random() < 0.3:
        zip_code = zip_code.replace(" ", "")
    city = c.city
    if noisy and rng.random() < 0.15:
        city = strip_diacritics(city)
    web = c.domain
    if noisy:
        roll = rng.random()
        if roll < 0.4:
            web = ""
        elif roll < 0.6:
            web = f"https://www.{c.domain}/"
    row = {
        "name": name,
        "ico": ico,
        "dic": dic,
        "email": email,
        "phone": phone,
        "web": web,
        "street": street,
        "city": city,
        "zip": zip_code,
        "country": c.country,
    }
    if noisy and rng.random() < 0.1:
        row["street"], row["city"] = "", ""  # address not kept in this system
    if noisy and rng.random() < 0.03:
        row["street"], row["city"] = row["city"], row["street"]  # swapped on import
    return row


def _typo_digits(rng: random.Random, digits: str) -> str:
    i = rng.randrange(len(digits))
    replacement = rng.choice([d for d in "0123456789" if d != digits[i]])
    return digits[:i] + replacement + digits[i + 1 :]


def generate_companies(
    n_records: int = 10_000,
    *,
    seed: int = 8,
    duplicate_rate: float = 0.35,
    branch_rate: float = 0.04,
) -> list[dict[str, str]]:
    """About ``n_records`` company rows with columns id, entity_id, system, name, ico, dic,…"""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    used: set[str] = set()
    used_domains: set[str] = set()
    n_entity = 0
    base_day = date(2026, 1, 1)
    while len(rows) < n_records:
        n_entity += 1
        company = _new_company(rng, f"E{n_entity:07d}", used, used_domains)
        family = [company]
        if company.ico and rng.random() < branch_rate:
            taken = {company.city}
            for _ in range(rng.choice((1, 1, 2))):
                n_entity += 1
                family.append(_branch_of(rng, company, f"E{n_entity:07d}", taken))
        for member in family:
            copies = 1
            if rng.random() < duplicate_rate:
                copies += rng.choices((1, 2, 3), (60, 30, 10))[0]
            for copy in range(copies):
                if len(rows) >= n_records:
                    break
                row = _render_company(rng, member, noisy=copy > 0)
                row["id"] = f"R{len(rows) + 1:07d}"
                row["entity_id"] = member.entity_id
                row["system"] = SYSTEMS[copy % 3] if copy else rng.choice(SYSTEMS)
                day = base_day - timedelta(days=rng.randrange(0, 900))
                row["updated_at"] = day.isoformat()
                rows.append(row)
    rng.shuffle(rows)
    return rows


def generate_people(
    n_records: int = 10_000, *, seed: int = 8, duplicate_rate: float = 0.35
) -> list[dict[str, str]]:
    """Contact rows (first/last name, birth date, e-mail, phone, address) with duplicates."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    used_emails: set[str] = set()
    n_entity = 0
    while len(rows) < n_records:
        n_entity += 1
        female = rng.random() < 0.5
        first = rng.choice(FIRST_F if female else FIRST_M)
        last = rng.choice(SURNAMES_M)
        if female:
            last = _feminine(last)
        country = "SK" if rng.random() < 0.3 else "CZ"
        city, zips = rng.choice(CITIES_SK if country == "SK" else CITIES_CZ)
        street = (
            f"{rng.choice(STREETS_SK if country == 'SK' else STREETS_CZ)} {rng.randrange(1, 2000)}"
        )
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
        login = f"{_slug(first)}.{_slug(last)}"
        host = rng.choice(("seznam.cz", "gmail.com", "email.cz", "azet.sk", "centrum.cz"))
        while f"{login}@{host}" in used_emails:  # a mailbox belongs to one person
            login = f"{_slug(first)}.{_slug(last)}{rng.randrange(1, 9999)}"
        email = f"{login}@{host}"
        used_emails.add(email)
        truth = {
            "first_name": first,
            "last_name": last,
            "birth_date": birth.isoformat(),
            "email": email,
            "phone": _phone(rng, country),
            "street": street,
            "city": city,
            "zip": _zip(rng, zips),
            "country": country,
        }
        copies = 1 + (
            rng.choices((1, 2, 3), (60, 30, 10))[0] if rng.random() < duplicate_rate else 0
        )
        for copy in range(copies):
            if len(rows) >= n_records:
                break
            row = dict(truth)
            if copy:
                _corrupt_person(rng, row, birth)
            row["id"] = f"P{len(rows) + 1:07d}"
            row["entity_id"] = f"H{n_entity:07d}"
            rows.append(row)
    rng.shuffle(rows)
    return rows


def _feminine(surname: str) -> str:
    if surname.endswith("ý"):
        return surname[:-1] + "á"
    if surname.endswith(("a", "á")):
        return surname[:-1] + "ová"
    if surname.endswith("ek"):
        return surname[:-2] + "ková"
    return surname + "ová"


def _corrupt_person(rng: random.Random, row: dict[str, str], birth: date) -> None:
    if rng.random() < 0.3:
        field = rng.choice(("first_name", "last_name"))
        row[field] = _typo(rng, row[field])
    if rng.random() < 0.25:
        row["first_name"], row["last_name"] = (
            strip_diacritics(row["first_name"]),
            strip_diacritics(row["last_name"]),
        )
    if rng.random() < 0.05:
        row["first_name"], row["last_name"] = row["last_name"], row["first_name"]
    roll = rng.random()
    if roll < 0.3:
        row["birth_date"] = f"{birth.day}. {birth.month}. {birth.year}"
    elif roll < 0.4:
        row["birth_date"] = ""
    elif roll < 0.45 and birth.day <= 12:
        row["birth_date"] = date(birth.year, birth.day, birth.month).isoformat()
    for field, p_missing in (("email", 0.35), ("phone", 0.3), ("street", 0.15)):
        if rng.random() < p_missing:
            row[field] = ""
    if row["phone"] and rng.random() < 0.3:
        row["phone"] = row["phone"].replace(" ", "")[4:]
    if row["street"] and rng.random() < 0.1:
        row["street"] = _typo(rng, row["street"])


def true_pairs(rows: list[dict[str, str]]) -> Iterator[tuple[str, str]]:
    """Every pair of row ids describing the same entity."""
    by_entity: dict[str, list[str]] = {}
    for row in rows:
        by_entity.setdefault(row["entity_id"], []).append(row["id"])
    for ids in by_entity.values():
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                yield ids[i], ids[j]
