#!/usr/bin/env bash
# Debian packages the tests need; installs only what is missing (root, apt registry only).
set -euo pipefail
wanted=(tesseract-ocr tesseract-ocr-ces tesseract-ocr-slk tesseract-ocr-eng fonts-dejavu-core chromium dovecot-imapd)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
