"""A real Tryton 8.2 for tests, benchmarks and the demo.

Tryton lives in its own venv under ``cache_dir("tryton")`` so its pins never meet Spojka's.
A golden SQLite database (modules activated, a Czech company with a chart of accounts, fiscal
year, taxes and products) is built once; every :func:`start` copies it into a run folder and
starts ``trytond`` on a free port.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from spojka.localsystems.common import (
    LocalServer,
    ManagedProcess,
    cache_dir,
    exclusive_lock,
    free_port,
    run_checked,
    wait_for_http,
)

SERIES = "8.2"
MODULES = (
    "party",
    "company",
    "currency",
    "product",
    "account",
    "account_invoice",
    "sale",
    "sale_opportunity",
    "purchase",
    "project",
    "timesheet",
    "project_invoice",
)
PACKAGES = (
    f"trytond=={SERIES}.*",
    f"proteus=={SERIES}.*",
    *(f"trytond-{module.replace('_', '-')}=={SERIES}.*" for module in MODULES),
)
DATABASE = "spojka"
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "Spojka-admin-8.2"
ADMIN_EMAIL = "admin@spojka.example"


# Runs inside Tryton's own venv (proteus talking to trytond directly, no server needed).
# Builds what a sales order → customer invoice and a supplier invoice need in a Czech company.
SEED_SCRIPT = """
import datetime as dt
import sys
from decimal import Decimal

from proteus import Model, Wizard, config

database, config_file = sys.argv[1], sys.argv[2]
config.set_trytond(database=database, config_file=config_file)

Currency = Model.get('currency.currency')
Rate = Model.get('currency.currency.rate')
czk = Currency(name='Česká koruna', symbol='Kč', code='CZK', rounding=Decimal('0.01'), digits=2)
czk.save()
eur = Currency(name='Euro', symbol='€', code='EUR', rounding=Decimal('0.01'), digits=2)
eur.save()
Rate(currency=czk, date=dt.date(2000, 1, 1), rate=Decimal('1')).save()
Rate(currency=eur, date=dt.date(2000, 1, 1), rate=Decimal('0.04')).save()

Country = Model.get('country.country')
cz = Country(name='Česko', code='CZ')
cz.save()
sk = Country(name='Slovensko', code='SK')
sk.save()

Party = Model.get('party.party')
company_party = Party(name='Spojka Demo s.r.o.')
address, = company_party.addresses
address.street = 'Vinohradská 12'
address.postal_code = '120 00'
address.city = 'Praha 2'
address.country = cz
company_party.save()

User = Model.get('res.user')
company_config = Wizard('company.company.config')
company_config.execute('company')
company = company_config.form
company.party = company_party
company.currency = czk
company.timezone = 'Europe/Prague'
company_config.execute('add')
config.get_config()._context = User.get_preferences(True, {})
Company = Model.get('company.company')
company, = Company.find()

Employee = Model.get('company.employee')
employee_party = Party(name='Jana Nováková')
employee_party.save()
employee = Employee(party=employee_party, company=company)
employee.save()
admin = User(config.get_config().user)
admin.employees.append(Employee(employee.id))
admin.employee = Employee(employee.id)
admin.save()
config.get_config()._context = User.get_preferences(True, {})

AccountTemplate = Model.get('account.account.template')
ModelData = Model.get('ir.model.data')
Account = Model.get('account.account')
template = AccountTemplate(
    ModelData.get_id('account', 'account_template_root_en', config.get_config().context))
create_chart = Wizard('account.create_chart')
create_chart.execute('account')
create_chart.form.account_template = template
create_chart.form.company = company
create_chart.execute('create_account')
accounts = {}
for kind in ('receivable', 'payable', 'revenue', 'expense'):
    accounts[kind], = Account.find(
        [('type.' + kind, '=', True), ('company', '=', company.id), ('closed', '!=', True)],
        limit=1)
accounts['tax'], = Account.find([('company', '=', company.id), ('code', '=', '6.3.6')], limit=1)
create_chart.form.account_receivable = accounts['receivable']
create_chart.form.account_payable = accounts['payable']
create_chart.form.category_account_revenue = accounts['revenue']
create_chart.form.category_account_expense = accounts['expense']
create_chart.execute('create_properties')

SequenceStrict = Model.get('ir.sequence.strict')
SequenceType = Model.get('ir.sequence.type')
FiscalYear = Model.get('account.fiscalyear')
for year in (dt.date.today().year - 1, dt.date.today().year, dt.date.today().year + 1):
    move_type, = SequenceType.find([('name', '=', 'Account Move')])
    move_seq = SequenceStrict(
        name=f'Účetní zápisy {year}', sequence_type=move_type, company=company)
    move_seq.save()
    fiscalyear = FiscalYear(
        name=str(year), start_date=dt.date(year, 1, 1), end_date=dt.date(year, 12, 31),
        company=company, move_sequence=move_seq)
    inv_type, = SequenceType.find([('name', '=', 'Invoice')])
    inv_seq = SequenceStrict(name=f'Faktury {year}', sequence_type=inv_type, company=company,
                             prefix=f'FV{year}-', padding=4)
    inv_seq.save()
    sup_seq = SequenceStrict(name=f'Přijaté faktury {year}', sequence_type=inv_type,
                             company=company, prefix=f'FP{year}-', padding=4)
    sup_seq.save()
    invoice_sequence, = fiscalyear.invoice_sequences
    invoice_sequence.out_invoice_sequence = inv_seq
    invoice_sequence.out_credit_note_sequence = inv_seq
    invoice_sequence.in_invoice_sequence = sup_seq
    invoice_sequence.in_credit_note_sequence = sup_seq
    fiscalyear.save()
    fiscalyear.click('create_period')

Tax = Model.get('account.tax')
taxes = {}
for rate in (21, 12):
    tax = Tax(name=f'DPH {rate} %', description=f'DPH {rate} %', type='percentage',
              rate=Decimal(rate) / 100, invoice_account=accounts['tax'],
              credit_note_account=accounts['tax'])
    tax.save()
    taxes[rate] = tax

PaymentTerm = Model.get('account.invoice.payment_term')
term = PaymentTerm(name='Splatnost 14 dní')
line = term.lines.new(type='remainder')
delta = line.relativedeltas.new(days=14)
term.save()

Category = Model.get('product.category')
category = Category(name='Služby a zboží', accounting=True)
category.account_revenue = accounts['revenue']
category.account_expense = accounts['expense']
category.customer_taxes.append(Tax(taxes[21].id))
category.supplier_taxes.append(Tax(taxes[21].id))
category.save()
reduced = Category(name='Zboží se sníženou sazbou', accounting=True)
reduced.account_revenue = accounts['revenue']
reduced.account_expense = accounts['expense']
reduced.customer_taxes.append(Tax(taxes[12].id))
reduced.supplier_taxes.append(Tax(taxes[12].id))
reduced.save()

Uom = Model.get('product.uom')
hour, = Uom.find([('name', '=', 'Hour')])
unit, = Uom.find([('name', '=', 'Unit')])
Template = Model.get('product.template')
products = [
    ('Konzultace', 'service', hour, Decimal('1500'), Decimal('900'), category),
    ('Implementace ERP', 'service', hour, Decimal('1800'), Decimal('1100'), category),
    ('Školení uživatelů', 'service', hour, Decimal('1200'), Decimal('700'), category),
    ('Licence Spojka (roční)', 'service', unit, Decimal('24000'), Decimal('0'), category),
    ('Odborná kniha: Účetnictví', 'goods', unit, Decimal('450'), Decimal('300'), reduced),
]
for name, kind, uom, price, cost, cat in products:
    tmpl = Template(name=name, type=kind, default_uom=uom, list_price=price,
                    salable=True, purchasable=True, account_category=cat)
    tmpl.sale_uom = uom
    tmpl.purchase_uom = uom
    tmpl.save()
    product, = tmpl.products
    product.cost_price = cost
    product.save()

Configuration = Model.get('account.configuration')
account_config = Configuration(1)
account_config.default_customer_payment_term = term
account_config.save()
print('seeded company', company.id)
"""


def home() -> Path:
    return cache_dir("tryton")


def _venv() -> Path:
    return home() / f"venv-{SERIES}"


def venv_python() -> Path:
    return _venv() / "bin" / "python"


def _install_fingerprint() -> str:
    return hashlib.sha256(json.dumps([sys.version_info[:2], PACKAGES]).encode()).hexdigest()[:16]


def ensure_installed() -> Path:
    """Create Tryton's venv and install trytond + modules once; returns the venv's python."""
    marker = _venv() / ".spojka-installed"
    if marker.exists() and marker.read_text() == _install_fingerprint():
        return venv_python()
    with exclusive_lock(home() / "install.lock"):
        if marker.exists() and marker.read_text() == _install_fingerprint():
            return venv_python()
        started = time.monotonic()
        if _venv().exists():
            shutil.rmtree(_venv())
        run_checked([sys.executable, "-m", "venv", str(_venv())])
        run_checked(
            [
                str(venv_python()),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *PACKAGES,
            ]
        )
        marker.write_text(_install_fingerprint())
        (home() / "install-seconds.txt").write_text(f"{time.monotonic() - started:.1f}\n")
    return venv_python()


def _write_config(folder: Path, *, port: int | None = None) -> Path:
    conf = folder / "trytond.conf"
    lines = [
        "[database]",
        "uri = sqlite://",
        f"path = {folder}",
        "[session]",
        # Idle sessions end after an hour; tests age sessions directly (expire_sessions).
        "timeout = 3600",
        "[web]",
        f"listen = 127.0.0.1:{port or 8000}",
    ]
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _golden_fingerprint() -> str:
    payload = json.dumps([_install_fingerprint(), MODULES, ADMIN_PASSWORD, SEED_SCRIPT])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _golden_dir() -> Path:
    return home() / "golden"


def golden_database() -> Path:
    """The golden SQLite file (built once: ~1 minute); never opened by a running server."""
    python = ensure_installed()
    target = _golden_dir() / f"{DATABASE}.sqlite"
    marker = _golden_dir() / ".spojka-golden"
    if marker.exists() and marker.read_text() == _golden_fingerprint() and target.exists():
        return target
    with exclusive_lock(home() / "golden.lock"):
        if marker.exists() and marker.read_text() == _golden_fingerprint() and target.exists():
            return target
        started = time.monotonic()
        bin_dir = python.parent
        with tempfile.TemporaryDirectory(dir=home(), prefix="build-") as tmp:
            build = Path(tmp)
            conf = _write_config(build)
            (build / f"{DATABASE}.sqlite").touch()
            passfile = build / "admin-password"
            passfile.write_text(ADMIN_PASSWORD)
            run_checked(
                [
                    str(bin_dir / "trytond-admin"),
                    "-c",
                    str(conf),
                    "-d",
                    DATABASE,
                    "--all",
                    "--email",
                    ADMIN_EMAIL,
                    "-u",
                    *MODULES,
                    "--activate-dependencies",
                ],
                env={"TRYTONPASSFILE": str(passfile)},
            )
            seed = build / "seed.py"
            seed.write_text(SEED_SCRIPT)
            run_checked([str(python), str(seed), DATABASE, str(conf)])
            if _golden_dir().exists():
                shutil.rmtree(_golden_dir())
            _golden_dir().mkdir(parents=True)
            shutil.copy2(build / f"{DATABASE}.sqlite", target)
        (home() / "golden-seconds.txt").write_text(f"{time.monotonic() - started:.1f}\n")
        marker.write_text(_golden_fingerprint())
    return target


@dataclass
class TrytonServer(LocalServer):
    """A running trytond on a copy of the golden database."""

    url: str
    database: str
    user: str
    password: str
    run_dir: Path
    port: int
    process: ManagedProcess = field(repr=False)
    owns_run_dir: bool = False

    def expire_sessions(self) -> None:
        """Age every login session past Tryton's ``max_age`` (what a long idle period does)."""
        with contextlib.closing(sqlite3.connect(self.run_dir / f"{self.database}.sqlite")) as db:
            db.execute(
                "UPDATE ir_session SET create_date = '2000-01-01 00:00:00', write_date = NULL"
            )
            db.commit()


def start(run_dir: Path | None = None) -> TrytonServer:
    """Copy the golden database into ``run_dir`` and start trytond on a free port."""
    golden = golden_database()
    folder = run_dir or Path(tempfile.mkdtemp(prefix="tryton-run-", dir=home()))
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (folder / f"{DATABASE}.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy2(golden, folder / f"{DATABASE}.sqlite")
    port = free_port()
    conf = _write_config(folder, port=port)
    process = ManagedProcess(
        argv=[str(venv_python().parent / "trytond"), "-c", str(conf), "-d", DATABASE],
        log_path=folder / "trytond.log",
    )
    proc = process.start()
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, process=proc, log=process.log_path)
    except Exception:
        process.stop()
        raise
    return TrytonServer(
        url=url,
        database=DATABASE,
        user=ADMIN_LOGIN,
        password=ADMIN_PASSWORD,
        run_dir=folder,
        port=port,
        process=process,
        owns_run_dir=run_dir is None,
    )
