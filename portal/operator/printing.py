"""Voucher cards to print: an A4 sheet of cards or a 58 mm thermal roll, and a batch as CSV.

The operator's UI calls these from its views: `cards_for` reads a batch into `Card`s, and
`render_a4` / `render_roll` make the page the browser prints (its own small style sheet from
portal/static, as the strict Content-Security-Policy of portal.web.security allows; no script).
Each card carries a QR code of the residents' portal URL with the code filled in
(`card_url`), so a phone on the hotspot's Wi-Fi opens the voucher form ready to send.

Cards are worded in Bahasa Indonesia whatever the operator's own language (they are sold to
residents): the words go through Babel under `force_locale`, so they need an app context with
Babel, as every view has; `standalone_app` makes one for tests and previews.
"""

from __future__ import annotations

import csv
import functools
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import segno
from flask import Blueprint, Flask, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotspotd.config import Config
from hotspotd.core import codes, settings, units, vouchers
from hotspotd.core.models import Voucher, VoucherBatch, VoucherState
from hotspotd.errors import NotFound
from portal import web
from portal.web import i18n

CARD_LOCALE = "id"
A4_PER_PAGE = 24  # 3 columns × 8 rows
QR_BORDER = 4  # modules of quiet zone, as the QR standard asks
QR_MASK = 0  # the data mask of every card's code (see qr_code)
QR_CACHE = 4096  # QR codes kept drawn, by URL: a batch's A4 sheet and roll (~1.5 KB each)
TRANSLATIONS = Path(web.__file__).resolve().parents[1] / "translations"

# Its templates, and the style sheets in portal/static under a path of its own, whatever the
# static folder of the app it is registered on.
bp = Blueprint(
    "printing",
    __name__,
    template_folder="templates",
    static_folder="../static",
    static_url_path="/print-static",
)

CSV_HEADER = ("code", "display_code", "plan", "price_rp", "state", "created_at", "first_used_at",
              "batch", "batch_note")  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Card:
    """One voucher card, every text on it ready to print."""

    village: str
    bumdes: str
    plan: str
    price: str  # "Rp 5.000"
    time: str  # "3 jam", "tanpa batas"
    data: str  # "1 GB", "tanpa batas"
    validity: str  # "berlaku 1 hari sejak dipakai"
    code: str  # as printed: "ABC-DEF-GHJ"
    url: str  # what the QR code says
    qr_svg: str  # inline <svg> markup made by segno from `url`


def portal_url(cfg: Config) -> str:
    """The residents' portal for a phone on the hotspot's Wi-Fi, by the router's address (a
    QR code needs no DNS that way, nor a phone that asks the network's resolver)."""
    p = cfg.portal
    port = "" if p.port == 80 else f":{p.port}"
    return f"http://{p.address}{port}/"


def card_url(portal_base: str, code: str) -> str:
    """The portal's welcome page with the voucher form filled in: `http://10.66.0.1/?code=…`."""
    return f"{portal_base.rstrip('/')}/?{urlencode({'code': codes.normalize(code)})}"


def qr_code(data: str) -> segno.QRCode:
    """The QR code of `data`: a full QR code (never a micro one), error correction M.

    Its data mask is fixed (QR_MASK) rather than chosen by scoring all eight: segno's scoring
    is four fifths of the cost of a code (1,000 cards took 7.6 s of it), and any mask reads
    back the same (zxing-cpp read 600 random card URLs with each of masks 0 and 2, as with
    the scored one)."""
    return segno.make_qr(data, error="m", boost_error=False, mask=QR_MASK)


@functools.lru_cache(maxsize=QR_CACHE)
def qr_svg(data: str) -> str:
    """The QR code of `data` as inline SVG: no XML declaration, a quiet zone, a viewBox and no
    size (the style sheet sizes `svg.qr` in millimetres), black on white, no style attribute.
    Safe to embed with `|safe`: it holds only numbers drawn from the code's modules, never
    `data` itself. Made once per URL (a bounded cache: the A4 sheet, then the roll, then a
    reprint of the same batch draw each card once)."""
    matrix = qr_code(data).matrix
    side = len(matrix) + 2 * QR_BORDER
    runs = [f"M{QR_BORDER} {QR_BORDER}.5"]  # then moves relative to the pen, as segno's
    pen_x = pen_y = 0  # in modules, from the first module's row
    for y, row in enumerate(matrix):
        x, width = 0, len(row)
        while x < width:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < width and row[x]:
                x += 1
            runs.append(f"m{start - pen_x} {y - pen_y}h{x - start}")
            pen_x, pen_y = x, y
    return (
        f'<svg viewBox="0 0 {side} {side}" class="qr">'
        f'<path fill="#fff" d="M0 0h{side}v{side}h-{side}z"/>'
        f'<path stroke="#000" d="{"".join(runs)}"/></svg>'
    )


def find_batch(db: Session, batch_name_or_id: str | int) -> VoucherBatch:
    """A batch by its id (an int) or its name."""
    if isinstance(batch_name_or_id, int):
        batch = db.get(VoucherBatch, batch_name_or_id)
    else:
        batch = db.scalar(select(VoucherBatch).where(VoucherBatch.name == batch_name_or_id))
    if batch is None:
        raise NotFound(f"no batch {batch_name_or_id!r}", reason="unknown_batch")
    return batch


def _vouchers_of(db: Session, batch: VoucherBatch) -> Sequence[Voucher]:
    stmt = select(Voucher).where(Voucher.batch_id == batch.id).order_by(Voucher.id)
    return db.scalars(stmt).all()


def _validity(seconds: int | None) -> str:
    if seconds is None:
        return str(_("valid until used up"))
    return str(_("valid for %(time)s from first use", time=i18n.duration(seconds)))


def cards_for(
    db: Session,
    batch_name_or_id: str | int,
    cfg: Config,
    *,
    unused_only: bool = True,
    lang: str = CARD_LOCALE,
) -> list[Card]:
    """The cards of a batch, in the order made; by default only the vouchers still unused (a
    reprint leaves out the sold, used and revoked ones). Needs an app context with Babel."""
    batch = find_batch(db, batch_name_or_id)
    base = portal_url(cfg)
    names = settings.effective(db, settings.Settings.defaults(cfg.village, cfg.free))
    cards = []
    terms: dict[int, tuple[str, str, str]] = {}  # a plan's words, said once per batch
    with force_locale(lang):
        for v in _vouchers_of(db, batch):
            if unused_only and v.state is not VoucherState.UNUSED:
                continue
            if v.plan_id not in terms:
                terms[v.plan_id] = (i18n.duration(v.plan.time_s),
                                    i18n.data_size(v.plan.data_bytes),
                                    _validity(v.plan.validity_s))  # fmt: skip
            time_, data, validity = terms[v.plan_id]
            url = card_url(base, v.code)
            cards.append(
                Card(
                    village=names.village_name,
                    bumdes=names.village_operator,
                    plan=v.plan.name,
                    price=units.format_rupiah(v.price_rp),
                    time=time_,
                    data=data,
                    validity=validity,
                    code=codes.display(v.code),
                    url=url,
                    qr_svg=qr_svg(url),
                )
            )
    return cards


def pages_of(cards: Sequence[Card], per_page: int = A4_PER_PAGE) -> list[Sequence[Card]]:
    return [cards[i : i + per_page] for i in range(0, len(cards), per_page)]


def render_a4(cards: Sequence[Card], *, title: str, lang: str = CARD_LOCALE) -> str:
    """An A4 page of cards, 3 × 8 a sheet, for the browser to print. In an app context on an
    app with `init_app` (or `standalone_app`), e.g. from a view."""
    with force_locale(lang):
        page: str = render_template(
            "print_a4.html", title=title, cards=cards, pages=pages_of(cards), lang=lang
        )
    return page


def render_roll(cards: Sequence[Card], *, title: str, lang: str = CARD_LOCALE) -> str:
    """The cards one after another on a 58 mm thermal roll, a cut line between them."""
    with force_locale(lang):
        page: str = render_template("print_roll.html", title=title, cards=cards, lang=lang)
    return page


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment else ""


def batch_csv(db: Session, batch: str | int, *, now: datetime | None = None) -> str:
    """A batch's vouchers as CSV, a header row and a row per voucher; times in UTC, ISO 8601.
    The state as recorded, or with `now` as it stands then (an unused card stays unused; an
    active one past its validity is expired)."""
    the_batch = find_batch(db, batch)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for v in _vouchers_of(db, the_batch):
        state = vouchers.state_now(v, now) if now is not None else v.state
        row = (v.code, codes.display(v.code), v.plan.name, v.price_rp, state.value,
               _utc(v.created_at), _utc(v.first_used_at), the_batch.name,
               the_batch.note or "")  # fmt: skip
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def init_app(app: Flask) -> None:
    """The printing pages' templates and style sheets on an app (the operator's UI)."""
    if bp.name not in app.blueprints:
        app.register_blueprint(bp)


def standalone_app(cfg: Config) -> Flask:
    """An app with only what the printing pages need (Babel with the portal's translations,
    the security headers, the templates and style sheets): for tests and previews."""
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config.update(
        HOTSPOT=cfg,
        SECRET_KEY=secrets.token_bytes(32),
        BABEL_DEFAULT_LOCALE=CARD_LOCALE,
        BABEL_DEFAULT_TIMEZONE=cfg.village.timezone,
        BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS),
    )
    web.init_app(app)
    init_app(app)
    return app
