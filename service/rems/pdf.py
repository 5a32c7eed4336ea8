"""The prefilled REMS monitoring form as a PDF (fpdf2: pure Python, its core fonts, nothing fetched)."""

from __future__ import annotations

from datetime import tzinfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from service.rems.form import MISSING, RemsForm

NOT_SUBMITTED = (
    "Tandem does not submit this form to the SPRAVATO REMS. Submit it at www.SPRAVATOrems.com or by fax within "
    "7 days of the session, then record the submission in Tandem."
)


def _latin1(text: str) -> str:
    """The core fonts are Latin-1: typographic dashes and quotes are written plainly, anything else replaced."""
    plain = text.replace("\u2014", "-").replace("\u2013", "-").replace("\u2019", "'").replace("\u2265", ">=")
    return plain.encode("latin-1", "replace").decode("latin-1")


def form_pdf(form: RemsForm, *, patient_name: str, zone: tzinfo) -> bytes:
    pdf = FPDF(format="Letter")
    pdf.set_title("SPRAVATO REMS Patient Monitoring Form (prefilled)")
    pdf.set_creator("Tandem")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 7, _latin1("SPRAVATO REMS Patient Monitoring Form - prefilled by Tandem"),
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    pdf.set_font("Helvetica", "", 9)
    session_day = form.session_started_at.astimezone(zone)
    intro = (f"{patient_name}, esketamine session of {session_day:%d %b %Y %H:%M %Z}; "
             f"due by {form.due_by.astimezone(zone):%d %b %Y}. ")  # fmt: skip
    if form.submitted_at is not None:
        intro += f"Submission recorded: {form.submitted_at.astimezone(zone):%d %b %Y %H:%M %Z}"
        intro += f" by {form.submitted_by}. " if form.submitted_by else " (sent by the EHR). "
    else:
        intro += "Submission not recorded. "
    pdf.multi_cell(0, 5, _latin1(intro + NOT_SUBMITTED), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for section in form.sections:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 11)
        pdf.multi_cell(0, 6, _latin1(section.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for item in section.fields:
            pdf.set_font("Helvetica", "", 9)
            pdf.multi_cell(0, 5, _latin1(item.label), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_font("Helvetica", "I" if item.value is None else "B", 10)
            pdf.set_x(pdf.l_margin + 6)
            pdf.multi_cell(0, 5, _latin1(item.value if item.value is not None else MISSING),
                           new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
            if item.note:
                pdf.set_font("Helvetica", "", 8)
                pdf.set_x(pdf.l_margin + 6)
                pdf.multi_cell(0, 4, _latin1(f"Tandem: {item.note}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
