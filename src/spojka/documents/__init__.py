"""Supplier invoices read into one canonical Invoice, in the order of trust:

1. structured XML — ISDOC 5.x/6.x (also inside .isdocx), UN/CEFACT CII (Factur-X / ZUGFeRD,
   taken from the PDF by the ``factur-x`` package), UBL 2.1 / Peppol BIS 3 / Slovak UBL
   (``xml_readers``);
2. the PDF text layer (PDFium via pypdfium2, pdfplumber as fallback) (``layout``);
3. OCR with Tesseract ces+slk+eng for scans and image PDFs (``layout``, ``ocr_setup``).

Printed invoices go through template-free rules (``rules``) plus per-supplier hints people
teach by correcting (``service``); every field carries source, confidence, page and box.
``checks`` names every failed check; ``service`` stores each file once and keeps versions.
"""
