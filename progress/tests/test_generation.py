"""Data files and templates -> documents: CSV and XLSX in, DOCX and HTML out, failures per row."""

import io
import zipfile

import docx
import openpyxl
import pytest

from progress import services
from progress.generation import BatchInputError, RowError, load_template, read_rows
from progress.jobs import run_batch
from progress.models import BatchTask, TaskDocument
from progress.tests.conftest import docx_template

pytestmark = pytest.mark.django_db(transaction=True)


def test_csv_and_xlsx_rows_read_alike():
    workbook = openpyxl.Workbook()
    workbook.active.append(["name", "amount"])
    workbook.active.append(["Ada", 12.5])
    workbook.active.append([None, None])  # blank rows are skipped
    workbook.active.append(["Bob", None])
    xlsx = io.BytesIO()
    workbook.save(xlsx)
    from_xlsx = read_rows(xlsx.getvalue(), "data.XLSX")
    from_csv = read_rows("\ufeffname,amount\nAda,12.5\n,\nBob,\n".encode(), "data.csv")
    assert from_xlsx == from_csv == [{"name": "Ada", "amount": "12.5"}, {"name": "Bob", "amount": ""}]
    assert read_rows(b"name,amount\nCy\n", "short.csv") == [{"name": "Cy"}]  # amount is missing, not empty


def test_unusable_inputs_are_refused_before_any_document():
    with pytest.raises(BatchInputError, match="no header"):
        read_rows(b"", "empty.csv")
    with pytest.raises(BatchInputError, match="must be .csv or .xlsx"):
        read_rows(b"a,b", "data.json")
    with pytest.raises(BatchInputError, match="Cannot read the data file"):
        read_rows(b"not a zip", "data.xlsx")
    with pytest.raises(BatchInputError, match="Cannot parse the DOCX template"):
        load_template(docx_template("Dear {{ name "), "letter.docx")
    with pytest.raises(BatchInputError, match="Cannot parse the template"):
        load_template(b"{% for %}", "letter.html")


def test_docx_rows_render_and_a_missing_field_fails_only_that_row():
    renderer = load_template(docx_template("Dear {{ name }},", "You owe {{ amount }}."), "letter.docx")
    name, content = renderer.render(0, {"name": "Ada <3", "amount": "12"})
    assert name == "document-00001.docx"
    assert [p.text for p in docx.Document(io.BytesIO(content)).paragraphs] == ["Dear Ada <3,", "You owe 12."]
    with pytest.raises(RowError, match="Missing field: 'amount' is undefined"):
        renderer.render(1, {"name": "Bob"})


def test_html_escapes_values_and_names_missing_fields():
    renderer = load_template(b"<p>Hello {{ name }}</p>", "note.html")
    assert renderer.render(0, {"name": "<script>"}) == ("document-00001.html", b"<p>Hello &lt;script&gt;</p>")
    with pytest.raises(RowError, match="Missing field: name"):
        renderer.render(1, {})


def test_a_batch_makes_a_zip_of_the_good_rows_and_records_the_bad(alice, media_root, uploads):
    data, template = uploads("name,amount\nAda,1\nBob,\nCy,3\n", docx_template("{{ name }}: {{ amount }}"))
    task = services.create_task(owner=alice, name="letters", data_file=data, template=template)
    # Bob's empty cell is a value (""), not a missing field: every row renders.
    run_batch(task.pk)
    task.refresh_from_db()
    assert (task.status, task.total, task.succeeded, task.failed, task.progress) == ("completed", 3, 3, 0, 100.0)
    with zipfile.ZipFile(task.result.open("rb")) as archive:
        assert archive.namelist() == ["document-00001.docx", "document-00002.docx", "document-00003.docx"]


def test_rows_missing_a_field_fail_and_the_batch_goes_on(alice, media_root, uploads):
    data, template = uploads("name\nAda\nBob\n", b"{{ name }} {{ city }}", "note.txt")
    task = services.create_task(owner=alice, name="notes", data_file=data, template=template)
    run_batch(task.pk)
    task.refresh_from_db()
    assert (task.status, task.succeeded, task.failed) == ("completed", 0, 2)
    assert list(task.documents.values_list("status", "error")) == [("failed", "Missing field: city")] * 2


def test_a_bad_template_fails_the_task_at_once(alice, media_root, uploads):
    data, template = uploads("name\nAda\n", b"{% if %}", "note.txt")
    task = services.create_task(owner=alice, name="broken", data_file=data, template=template)
    run_batch(task.pk)
    task.refresh_from_db()
    assert task.status == BatchTask.Status.FAILED
    assert task.error.startswith("Cannot parse the template")
    assert not TaskDocument.objects.filter(task=task).exists()
