"""The village's own pages: the BUMDes market and the lessons, free to read before login.

They are served by the router itself, so they work with the uplink down. Reading only: the
operator keeps them up to date with `hotspotctl market` and `hotspotctl lesson`.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext

from hotspotd.core import content
from hotspotd.core.models import LessonTopic
from hotspotd.errors import NotFound
from portal.web.context import db

bp = Blueprint("village", __name__, template_folder="templates")

TOPICS = {
    LessonTopic.INTERNET: lazy_gettext("Internet basics"),
    LessonTopic.JUALAN: lazy_gettext("Selling online"),
    LessonTopic.KESEHATAN: lazy_gettext("Health"),
    LessonTopic.PERTANIAN: lazy_gettext("Farming"),
}


@bp.app_template_global()
def topic_name(topic: LessonTopic) -> str:
    return str(TOPICS[topic])


@bp.app_template_filter("blocks")
def blocks_filter(body: str) -> list[content.Block]:
    return content.blocks(body)


@bp.app_template_filter("whatsapp")
def whatsapp_filter(phone: str) -> str:
    return content.whatsapp_number(phone)


@bp.get("/pasar")
def market() -> ResponseReturnValue:
    return render_template("market.html", listings=content.listings(db()))


@bp.get("/pasar/<int:listing_id>")
def listing(listing_id: int) -> ResponseReturnValue:
    try:
        item = content.get_listing(db(), listing_id)
    except NotFound:
        abort(404)
    return render_template("listing.html", item=item)


@bp.get("/belajar")
def lessons() -> ResponseReturnValue:
    shelves: dict[LessonTopic, list[object]] = {}
    for lesson in content.lessons(db()):
        shelves.setdefault(lesson.topic, []).append(lesson)
    return render_template("lessons.html", shelves=shelves)


@bp.get("/belajar/<slug>")
def lesson(slug: str) -> ResponseReturnValue:
    try:
        item = content.get_lesson(db(), slug)
    except NotFound:
        abort(404)
    return render_template("lesson.html", item=item)
