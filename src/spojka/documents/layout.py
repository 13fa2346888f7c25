"""Words with positions → lines → segments (runs of words without a column gap).

Both the PDF text layer and OCR produce the same Layout, so the extraction rules run on either.
Coordinates are PDF points from the top-left of the page.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spojka.documents.parsing import fold_keep_length


@dataclass(slots=True)
class Word:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    page: int
    conf: float = 1.0


@dataclass(slots=True)
class Segment:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    page: int
    conf: float = 1.0
    folded: str = ""

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (round(self.x0, 1), round(self.top, 1), round(self.x1, 1), round(self.bottom, 1))

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(slots=True)
class Line:
    page: int
    top: float
    bottom: float
    segments: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "  ".join(s.text for s in self.segments)


@dataclass(slots=True)
class Layout:
    lines: list[Line]
    pages: int
    source: str  # "text" or "ocr"

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def segments(self) -> Iterable[Segment]:
        for line in self.lines:
            yield from line.segments


def _segment(words: list[Word]) -> Segment:
    text = " ".join(w.text for w in words)
    return Segment(
        text=text,
        x0=min(w.x0 for w in words),
        top=min(w.top for w in words),
        x1=max(w.x1 for w in words),
        bottom=max(w.bottom for w in words),
        page=words[0].page,
        conf=min(w.conf for w in words),
        folded=fold_keep_length(text),
    )


def split_segments(words: list[Word]) -> list[Segment]:
    """Split one line's words wherever the gap is wider than about one letter height."""
    words = sorted(words, key=lambda w: w.x0)
    height = sorted(w.bottom - w.top for w in words)[len(words) // 2] or 8.0
    groups: list[list[Word]] = [[words[0]]]
    for word in words[1:]:
        if word.x0 - groups[-1][-1].x1 > max(0.9 * height, 6.0):
            groups.append([word])
        else:
            groups[-1].append(word)
    return [_segment(g) for g in groups]


def lines_from_words(words: list[Word]) -> list[Line]:
    """Group words by baseline (PDF text layer, where words sit exactly level). A word joins
    the nearest recent line whose baseline is within a third of its height and where it
    overlaps no word already there, so a small label and a larger value stay together."""
    lines: list[Line] = []
    for page in sorted({w.page for w in words}):
        groups: list[list[Word]] = []
        for word in sorted((w for w in words if w.page == page), key=lambda w: (w.bottom, w.x0)):
            tolerance = 0.35 * (word.bottom - word.top)
            best, best_gap = None, tolerance
            for group in groups[-6:]:
                gap = abs(group[0].bottom - word.bottom)
                if gap <= best_gap and not any(w.x0 < word.x1 and word.x0 < w.x1 for w in group):
                    best, best_gap = group, gap
            if best is None:
                groups.append([word])
            else:
                best.append(word)
        lines.extend(_line(g) for g in groups)
    return lines


def _line(words: list[Word]) -> Line:
    segments = split_segments(words)
    return Line(
        page=words[0].page,
        top=min(w.top for w in words),
        bottom=max(w.bottom for w in words),
        segments=segments,
    )


# --- PDF text layer --------------------------------------------------------------------------


def pdf_layout(path: Path) -> Layout:
    """Words of a PDF's text layer; an empty layout when the PDF has none (a scan).

    PDFium (pypdfium2, which pdfplumber ships with) gives characters and their boxes about
    five times faster than pdfminer; pdfplumber is the fallback for PDFs PDFium rejects.
    """
    try:
        words, pages = _pdfium_words(path)
    except Exception:
        words, pages = _pdfplumber_words(path)
    return Layout(lines=lines_from_words(words), pages=pages, source="text")


def _pdfium_words(path: Path) -> tuple[list[Word], int]:
    import pypdfium2 as pdfium

    words: list[Word] = []
    pdf = pdfium.PdfDocument(str(path))
    try:
        for number, page in enumerate(pdf, start=1):
            words.extend(_pdfium_page_words(page.get_textpage(), page.get_height(), number))
        return words, len(pdf)
    finally:
        pdf.close()


def _pdfium_page_words(textpage: Any, height: float, number: int) -> list[Word]:
    count = textpage.count_chars()
    text = textpage.get_text_range(0, count)
    if len(text) != count:  # characters outside the BMP shift indexes: go one by one
        text = "".join(textpage.get_text_range(i, 1)[:1] or " " for i in range(count))
    words: list[Word] = []
    chars: list[str] = []
    box: list[float] = []
    for i, ch in enumerate([*text, " "]):
        boundary = ch.isspace() or ch == "\x00"
        if not boundary:
            left, bottom, right, top = textpage.get_charbox(i, loose=True)
            size = max(top - bottom, 1.0)
            # no space character but a visible gap or another baseline: a new word
            boundary = bool(box) and (
                left - box[2] > 0.3 * size or abs(bottom - box[1]) > 0.3 * size
            )
        if boundary and chars:
            words.append(
                Word("".join(chars), box[0], height - box[3], box[2], height - box[1], number)
            )
            chars, box = [], []
        if ch.isspace() or ch == "\x00":
            continue
        chars.append(ch)
        if box:
            box = [min(box[0], left), min(box[1], bottom), max(box[2], right), max(box[3], top)]
        else:
            box = [left, bottom, right, top]
    return words


def _pdfplumber_words(path: Path) -> tuple[list[Word], int]:
    import pdfplumber

    words: list[Word] = []
    with pdfplumber.open(path) as pdf:
        for number, page in enumerate(pdf.pages, start=1):
            for w in page.extract_words(keep_blank_chars=False, use_text_flow=False):
                words.append(
                    Word(
                        text=w["text"],
                        x0=float(w["x0"]),
                        top=float(w["top"]),
                        x1=float(w["x1"]),
                        bottom=float(w["bottom"]),
                        page=number,
                    )
                )
        return words, len(pdf.pages)


# --- OCR -------------------------------------------------------------------------------------

OCR_DPI = 300


def render_pdf_pages(path: Path, *, dpi: int = OCR_DPI) -> list[Any]:
    """PDF pages as PIL images (pypdfium2, shipped with pdfplumber)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return [page.render(scale=dpi / 72).to_pil() for page in pdf]
    finally:
        pdf.close()


def ocr_layout(images: list[Any], *, dpi: int = OCR_DPI, languages: str = "ces+slk+eng") -> Layout:
    """OCR page images with Tesseract; lines as Tesseract found them, split at column gaps."""
    import pytesseract

    from spojka.documents.ocr_setup import ensure_document_tools

    ensure_document_tools()
    # Tesseract's OpenMP threads make one page 3-4x slower on a small, busy machine; one
    # thread per page and pages in parallel processes is the faster way to use the cores.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    scale = 72.0 / dpi
    lines: list[Line] = []
    for number, image in enumerate(images, start=1):
        gray = image.convert("L")
        data = pytesseract.image_to_data(
            gray,
            lang=languages,
            config="--psm 3 -c preserve_interword_spaces=1",
            output_type=pytesseract.Output.DICT,
        )
        by_line: dict[tuple[int, int, int], list[Word]] = {}
        for i, text in enumerate(data["text"]):
            text = (text or "").strip()
            conf = float(data["conf"][i])
            if not text or conf < 0:
                continue
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            by_line.setdefault(key, []).append(
                Word(
                    text=text,
                    x0=data["left"][i] * scale,
                    top=data["top"][i] * scale,
                    x1=(data["left"][i] + data["width"][i]) * scale,
                    bottom=(data["top"][i] + data["height"][i]) * scale,
                    page=number,
                    conf=conf / 100.0,
                )
            )
        _deskew(by_line)
        page_lines = [_line(words) for words in by_line.values()]
        page_lines.sort(key=lambda ln: (ln.top, ln.segments[0].x0))
        lines.extend(page_lines)
    return Layout(lines=_merge_level_lines(lines), pages=len(images), source="ocr")


def _deskew(by_line: dict[tuple[int, int, int], list[Word]]) -> None:
    """Undo a slightly rotated scan on the word boxes: Tesseract follows each text line, so the
    median slope of its lines is the page's skew; rotating the word centres back makes table
    rows level again (cheaper than a second OCR pass on a rotated image)."""
    slopes = []
    for words in by_line.values():
        if len(words) < 2:
            continue
        first, last = words[0], words[-1]
        dx = (last.x0 + last.x1 - first.x0 - first.x1) / 2
        if dx > 60:
            dy = (last.top + last.bottom - first.top - first.bottom) / 2
            slopes.append(dy / dx)
    if len(slopes) < 3:
        return
    slopes.sort()
    angle = math.atan(slopes[len(slopes) // 2])
    if abs(angle) < 0.0005:
        return
    cos, sin = math.cos(angle), math.sin(angle)
    for words in by_line.values():
        for w in words:
            cx, cy = (w.x0 + w.x1) / 2, (w.top + w.bottom) / 2
            half_w, half_h = (w.x1 - w.x0) / 2, (w.bottom - w.top) / 2
            nx, ny = cx * cos + cy * sin, -cx * sin + cy * cos
            w.x0, w.x1, w.top, w.bottom = nx - half_w, nx + half_w, ny - half_h, ny + half_h


def _merge_level_lines(lines: list[Line]) -> list[Line]:
    """Tesseract puts side-by-side columns in separate blocks; put level lines back together
    so "label … value" across a column gap reads as one line, as in the PDF text layer."""
    merged: list[Line] = []
    for line in lines:
        mid = (line.top + line.bottom) / 2
        target = next(
            (
                m
                for m in merged[-6:]
                if m.page == line.page
                and abs((m.top + m.bottom) / 2 - mid) < 0.4 * (line.bottom - line.top)
                and not any(_overlaps(s, t) for s in m.segments for t in line.segments)
            ),
            None,
        )
        if target is None:
            merged.append(line)
        else:
            target.segments = sorted(target.segments + line.segments, key=lambda s: s.x0)
            target.top = min(target.top, line.top)
            target.bottom = max(target.bottom, line.bottom)
    merged.sort(key=lambda ln: (ln.page, ln.top))
    return merged


def _overlaps(a: Segment, b: Segment) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1
