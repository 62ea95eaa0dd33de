"""The village's own pages: BUMDes market listings and lessons, readable before login.

Text is stored as the operator typed it and always escaped on output; a body is plain
paragraphs separated by an empty line, and lines starting with "- " make a list. No HTML,
no Markdown: nothing a listing says can become markup on a resident's phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DB

from hotspotd.core.models import Lesson, LessonTopic, Listing
from hotspotd.errors import InvalidInput, NotFound

MAX_BODY = 20_000
MAX_PRICE_RP = 1_000_000_000
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,58}[a-z0-9])$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _text(name: str, value: str, limit: int, *, required: bool = True) -> str:
    text = value.replace("\r\n", "\n").strip()
    if required and not text:
        raise InvalidInput(f"{name}: must not be empty")
    if len(text) > limit:
        raise InvalidInput(f"{name}: at most {limit} characters, got {len(text)}")
    if _CONTROL.search(text) or (limit <= 160 and "\n" in text):
        raise InvalidInput(f"{name}: one line of plain text, without control characters")
    return text


def normalize_phone(value: str) -> str:
    """A phone number as digits, with an Indonesian 0 or +62 start kept as typed ("0812...").

    Spaces, dots and dashes are dropped; anything else is refused. Empty stays empty.
    """
    text = re.sub(r"[\s.\-()]", "", value.strip())
    if not text:
        return ""
    if not re.fullmatch(r"\+?[0-9]{8,15}", text):
        raise InvalidInput(f"contact: not a phone number: {value!r} (8 to 15 digits)")
    return text


def whatsapp_number(phone: str) -> str:
    """The number as WhatsApp links want it: country code, no plus ("0812..." -> "62812...")."""
    if phone.startswith("+"):
        return phone[1:]
    if phone.startswith("0"):
        return "62" + phone[1:]
    return phone


# ---------------------------------------------------------------- market


@dataclass(frozen=True)
class ListingFields:
    title: str
    seller: str
    description: str = ""
    price_rp: int | None = None
    unit: str = ""
    contact: str = ""

    def clean(self) -> ListingFields:
        if self.price_rp is not None and not 0 <= self.price_rp <= MAX_PRICE_RP:
            raise InvalidInput(f"price: between 0 and {MAX_PRICE_RP:,} rupiah")
        return ListingFields(
            title=_text("title", self.title, 80),
            seller=_text("seller", self.seller, 80),
            description=_text("description", self.description, MAX_BODY, required=False),
            price_rp=self.price_rp,
            unit=_text("unit", self.unit, 24, required=False),
            contact=normalize_phone(self.contact),
        )


def add_listing(db: DB, fields: ListingFields, now: datetime) -> Listing:
    f = fields.clean()
    listing = Listing(
        title=f.title,
        seller=f.seller,
        description=f.description,
        price_rp=f.price_rp,
        unit=f.unit,
        contact=f.contact,
        hidden=False,
        created_at=now,
        updated_at=now,
    )
    db.add(listing)
    db.flush()
    return listing


def get_listing(db: DB, listing_id: int, *, include_hidden: bool = False) -> Listing:
    listing = db.get(Listing, listing_id)
    if listing is None or (listing.hidden and not include_hidden):
        raise NotFound(f"no market listing {listing_id}", reason="unknown_listing")
    return listing


def edit_listing(db: DB, listing_id: int, fields: ListingFields, now: datetime) -> Listing:
    listing = get_listing(db, listing_id, include_hidden=True)
    f = fields.clean()
    listing.title, listing.seller, listing.description = f.title, f.seller, f.description
    listing.price_rp, listing.unit, listing.contact = f.price_rp, f.unit, f.contact
    listing.updated_at = now
    return listing


def set_listing_hidden(db: DB, listing_id: int, hidden: bool, now: datetime) -> Listing:
    listing = get_listing(db, listing_id, include_hidden=True)
    listing.hidden = hidden
    listing.updated_at = now
    return listing


def remove_listing(db: DB, listing_id: int) -> None:
    db.delete(get_listing(db, listing_id, include_hidden=True))


def listings(db: DB, *, include_hidden: bool = False) -> list[Listing]:
    """Newest first, as a market board reads."""
    query = select(Listing).order_by(Listing.updated_at.desc(), Listing.id.desc())
    if not include_hidden:
        query = query.where(Listing.hidden.is_(False))
    return list(db.scalars(query))


# ---------------------------------------------------------------- lessons


@dataclass(frozen=True)
class LessonFields:
    slug: str
    topic: LessonTopic
    title: str
    summary: str
    body: str
    position: int = 0


def parse_lesson(text: str, *, position: int = 0, source: str = "lesson") -> LessonFields:
    """A lesson file: `slug:`, `topic:`, `title:`, `summary:` lines, an empty line, the body."""
    head, sep, body = text.replace("\r\n", "\n").lstrip("\ufeff").partition("\n\n")
    if not sep:
        raise InvalidInput(f"{source}: the header and the body must be parted by an empty line")
    fields: dict[str, str] = {}
    for number, line in enumerate(head.splitlines(), start=1):
        key, colon, value = line.partition(":")
        key = key.strip().lower()
        if not colon or key not in ("slug", "topic", "title", "summary"):
            raise InvalidInput(f"{source}: line {number}: expected slug:, topic:, title: or "
                               f"summary:, got {line[:40]!r}")  # fmt: skip
        if key in fields:
            raise InvalidInput(f"{source}: line {number}: {key}: given twice")
        fields[key] = value.strip()
    missing = [k for k in ("slug", "topic", "title") if not fields.get(k)]
    if missing:
        raise InvalidInput(f"{source}: missing {', '.join(missing)}")
    try:
        topic = LessonTopic(fields["topic"].lower())
    except ValueError:
        choices = ", ".join(t.value for t in LessonTopic)
        raise InvalidInput(f"{source}: topic: one of {choices}, got {fields['topic']!r}") from None
    return clean_lesson(
        LessonFields(
            slug=fields["slug"],
            topic=topic,
            title=fields["title"],
            summary=fields.get("summary", ""),
            body=body,
            position=position,
        ),
        source,
    )


def clean_lesson(fields: LessonFields, source: str = "lesson") -> LessonFields:
    if not _SLUG.match(fields.slug):
        raise InvalidInput(f"{source}: slug: 3 to 60 of a-z, 0-9 and '-', got {fields.slug!r}")
    try:
        return LessonFields(
            slug=fields.slug,
            topic=fields.topic,
            title=_text("title", fields.title, 80),
            summary=_text("summary", fields.summary, 160, required=False),
            body=_text("body", fields.body, MAX_BODY),
            position=fields.position,
        )
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: {exc}") from None


def put_lesson(db: DB, fields: LessonFields, now: datetime) -> tuple[Lesson, bool]:
    """Add the lesson, or replace the one with the same slug; (lesson, whether it is new)."""
    f = clean_lesson(fields)
    lesson = db.scalar(select(Lesson).where(Lesson.slug == f.slug))
    created = lesson is None
    if lesson is None:
        lesson = Lesson(slug=f.slug, hidden=False)
        db.add(lesson)
    lesson.topic, lesson.title, lesson.summary = f.topic, f.title, f.summary
    lesson.body, lesson.position, lesson.updated_at = f.body, f.position, now
    db.flush()
    return lesson, created


def get_lesson(db: DB, slug: str, *, include_hidden: bool = False) -> Lesson:
    lesson = db.scalar(select(Lesson).where(Lesson.slug == slug)) if _SLUG.match(slug) else None
    if lesson is None or (lesson.hidden and not include_hidden):
        raise NotFound(f"no lesson {slug!r}", reason="unknown_lesson")
    return lesson


def set_lesson_hidden(db: DB, slug: str, hidden: bool, now: datetime) -> Lesson:
    lesson = get_lesson(db, slug, include_hidden=True)
    lesson.hidden = hidden
    lesson.updated_at = now
    return lesson


def lessons(db: DB, *, include_hidden: bool = False) -> list[Lesson]:
    """In shelf order: by topic as LessonTopic lists them, then position, then title."""
    query = select(Lesson)
    if not include_hidden:
        query = query.where(Lesson.hidden.is_(False))
    order = {t: i for i, t in enumerate(LessonTopic)}
    return sorted(db.scalars(query), key=lambda le: (order[le.topic], le.position, le.title))


def counts(db: DB) -> tuple[int, int]:
    """How many listings and lessons a resident can see (for the welcome page's tiles)."""
    shown_listings = db.scalar(select(func.count()).where(Listing.hidden.is_(False))) or 0
    shown_lessons = db.scalar(select(func.count()).where(Lesson.hidden.is_(False))) or 0
    return int(shown_listings), int(shown_lessons)


# ---------------------------------------------------------------- bodies


@dataclass(frozen=True)
class Block:
    kind: str  # "p" or "ul"
    lines: tuple[str, ...]


def blocks(body: str) -> list[Block]:
    """A body as paragraphs and lists, for a template to escape and lay out."""
    out: list[Block] = []
    for chunk in re.split(r"\n\s*\n", body.strip()):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        para: list[str] = []
        items: list[str] = []
        for line in lines:
            if line.startswith("- "):
                if para:
                    out.append(Block("p", (" ".join(para),)))
                    para = []
                items.append(line[2:].strip())
            else:
                if items:
                    out.append(Block("ul", tuple(items)))
                    items = []
                para.append(line)
        if para:
            out.append(Block("p", (" ".join(para),)))
        if items:
            out.append(Block("ul", tuple(items)))
    return out
