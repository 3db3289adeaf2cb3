import io

import docx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile


def docx_template(*paragraphs: str) -> bytes:
    """A Word file whose paragraphs hold docxtpl (Jinja2) tags."""
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def uploads():
    """Factory: ``uploads(rows_csv, template_bytes, template_name)`` -> (data_file, template) uploads."""

    def make(csv_text: str, template: bytes, template_name: str = "letter.docx"):
        return (
            SimpleUploadedFile("people.csv", csv_text.encode(), content_type="text/csv"),
            SimpleUploadedFile(template_name, template),
        )

    return make


@pytest.fixture
def staff_user(make_user):
    return make_user("ops", is_staff=True, is_superuser=True)
