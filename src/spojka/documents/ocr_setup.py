"""Installs the OS packages the document readers need: Tesseract with Czech/Slovak/English data
and a TTF font with Czech diacritics (DejaVu) used by the test-document generator.

Called by the OCR reader on first use, by the test fixtures and by ``make`` targets, so a fresh
machine gets what it needs without a manual step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from spojka.core.errors import ConfigError

APT_PACKAGES = (
    "tesseract-ocr",
    "tesseract-ocr-ces",
    "tesseract-ocr-slk",
    "tesseract-ocr-eng",
    "fonts-dejavu-core",
)
OCR_LANGUAGES = ("ces", "slk", "eng")
DEJAVU_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)


def _languages_present() -> set[str]:
    exe = shutil.which("tesseract")
    if not exe:
        return set()
    out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, check=False)
    return {line.strip() for line in (out.stdout + out.stderr).splitlines()}


def font_path(bold: bool = False) -> Path | None:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in DEJAVU_DIRS:
        if (folder / name).is_file():
            return folder / name
    return None


def ocr_ready() -> bool:
    return set(OCR_LANGUAGES) <= _languages_present()


def ensure_document_tools(*, install: bool = True) -> None:
    """Make sure Tesseract (ces, slk, eng) and DejaVu fonts are installed; apt-get them if not.

    Raises ConfigError with the command to run when they are missing and cannot be installed
    (not root, no apt-get, or install=False).
    """
    if ocr_ready() and font_path() is not None:
        return
    wanted = " ".join(APT_PACKAGES)
    if not install or shutil.which("apt-get") is None or os.geteuid() != 0:
        raise ConfigError(f"OCR needs Debian packages; install them with: apt-get install {wanted}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # A fresh machine has empty package lists; update once before the install.
    subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-q"],
        env=env,
        capture_output=True,
        check=False,
    )
    done = subprocess.run(
        [
            "apt-get",
            "-o",
            "DPkg::Lock::Timeout=600",  # other installs may hold the dpkg lock for a while
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            *APT_PACKAGES,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not ocr_ready():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["unknown failure"]
        raise ConfigError(f"could not install {wanted}: {tail[0]}")


if __name__ == "__main__":  # `python -m spojka.documents.ocr_setup` for Makefiles and CI
    ensure_document_tools()
    print("tesseract languages:", " ".join(sorted(_languages_present())))
