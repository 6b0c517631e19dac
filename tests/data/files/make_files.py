"""Writes the checked-in test documents (run once; the outputs are committed):

- ``handbook.pdf``: three pages of text, written as a plain PDF (Helvetica text objects, an xref);
- ``locked.pdf``: the same, encrypted with a user password (pypdf);
- ``broken.pdf``: a PDF header and nothing a reader can use;
- ``policy.docx``: headings, paragraphs and a table (python-docx).

    python3 tests/data/files/make_files.py
"""

from __future__ import annotations

import io
from pathlib import Path

HERE = Path(__file__).parent

PAGES = [
    ["Employee Handbook", "Chapter 1: Working hours", "Core hours are 10:00 to 15:00 on weekdays.",
     "Flexible time may be arranged with your lead."],
    ["Chapter 2: Expenses", "Travel is reimbursed within 30 days of the claim.",
     "The per diem for meals is 45 euros in every city."],
    ["Chapter 3: Security", "Laptops must use full disk encryption.",
     "Report a lost badge to the front desk within one hour."],
]  # fmt: skip


def pdf(pages: list[list[str]]) -> bytes:
    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        text = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(f"<< /Length {len(text)} >>\nstream\n{text}\nendstream".encode())
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def locked(data: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx() -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading("Travel Policy", level=1)
    document.add_paragraph("This policy covers every trip booked for work.")
    document.add_heading("Booking", level=2)
    document.add_paragraph("Book flights at least 14 days ahead through the travel desk.")
    document.add_heading("Hotels", level=2)
    document.add_paragraph("Hotels are capped at 180 euros a night in capital cities.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Class", "Allowed"
    table.cell(1, 0).text, table.cell(1, 1).text = "Economy", "Always"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


if __name__ == "__main__":
    handbook = pdf(PAGES)
    (HERE / "handbook.pdf").write_bytes(handbook)
    (HERE / "locked.pdf").write_bytes(locked(handbook))
    (HERE / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer\n")
    (HERE / "policy.docx").write_bytes(docx())
