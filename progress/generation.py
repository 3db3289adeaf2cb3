"""
Turning one data file and one template into documents (seed 001's batch document generator).

- Data: CSV (UTF-8, header row) or XLSX (the first sheet, header row; openpyxl). Each further row
  is one document's context: ``{column header: cell text}``; blank rows are skipped.
- Template: DOCX (docxtpl: Jinja2 tags in a Word file) or text/HTML (``.txt``, ``.html``:
  Django's template language, HTML escaped in ``.html``).

A data file or template that cannot be read raises ``BatchInputError`` before any document is
made (the task fails at once, with the message). ``check_upload`` refuses, when a batch is created
over REST (the /tasks/ page), what would fail every document: a bad header row or a template
field that is not a column of the data, in sentences a person reads. A row that cannot be rendered (a field the
template uses is missing, a bad value) raises ``RowError``: that document fails, the batch goes on.
"""

import csv
import io
from dataclasses import dataclass
from pathlib import PurePath

import jinja2
import openpyxl
from django.template import Context, Engine, TemplateSyntaxError
from docxtpl import DocxTemplate

DATA_EXTENSIONS = (".csv", ".xlsx")
TEMPLATE_EXTENSIONS = (".docx", ".html", ".txt")
# Django's string_if_invalid with %s: a missing variable renders as this marker naming it.
_MISSING = "\x00missing:%s\x00"


class BatchInputError(Exception):
    """
    The data file or the template cannot be used at all; the message says why. ``field`` names
    the upload at fault (``"data_file"`` or ``"template"``; ``""`` when not known).
    """

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class RowError(Exception):
    """One row cannot be rendered; the message says why (stored on its document)."""


def _extension(name: str) -> str:
    return PurePath(name).suffix.lower()


def read_rows(content: bytes, name: str) -> list[dict[str, str]]:
    """Return the rows of a CSV or XLSX file as dicts of header -> text; raise ``BatchInputError``."""
    return read_table(content, name)[1]


def read_table(content: bytes, name: str) -> tuple[list[str], list[dict[str, str]]]:
    """``(column names, rows)`` of a CSV or XLSX file (``read_rows``); raise ``BatchInputError``."""
    extension = _extension(name)
    try:
        if extension == ".csv":
            reader = csv.reader(io.StringIO(content.decode("utf-8-sig")))
            table = [row for row in reader]
        elif extension == ".xlsx":
            workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
            table = [
                ["" if cell is None else str(cell) for cell in row]
                for row in workbook.worksheets[0].iter_rows(values_only=True)
            ]
            workbook.close()
        else:
            raise BatchInputError(
                f"Data files must be {' or '.join(DATA_EXTENSIONS)}, not {extension or 'no extension'}"
            )
    except BatchInputError:
        raise
    except Exception as exc:
        raise BatchInputError(f"Cannot read the data file: {exc}") from None
    if not table or not any(table[0]):
        raise BatchInputError("The data file has no header row: its first line must name the columns (name,city,...)")
    header = [column.strip() for column in table[0]]
    repeated = sorted({column for column in header if column and header.count(column) > 1})
    if repeated:
        raise BatchInputError(
            f"The header row names {_quoted(repeated)} more than once: each column needs a name of its own"
        )
    # A row shorter than the header lacks those fields (a missing field fails its document);
    # an empty cell is a field whose value is "".
    return header, [dict(zip(header, row, strict=False)) for row in table[1:] if any(cell.strip() for cell in row)]


def _quoted(names) -> str:
    return ", ".join(f"“{name}”" for name in names)


@dataclass
class Renderer:
    """Renders one row into ``(file name, bytes)``; built by ``load_template``."""

    kind: str  # "docx", "html" or "txt"
    source: bytes
    _django_template: object = None
    _jinja_env: jinja2.Environment | None = None

    def render(self, index: int, row: dict[str, str]) -> tuple[str, bytes]:
        """Return the document of row ``index`` (0-based); raise ``RowError``."""
        name = f"document-{index + 1:05d}.{self.kind}"
        if self.kind == "docx":
            document = DocxTemplate(io.BytesIO(self.source))
            try:
                document.render(row, jinja_env=self._jinja_env)
            except jinja2.UndefinedError as exc:
                raise RowError(f"Missing field: {exc.message}") from None
            except Exception as exc:
                raise RowError(f"Cannot render the row: {exc}") from None
            out = io.BytesIO()
            document.save(out)
            return name, out.getvalue()
        text = self._django_template.render(Context(row, autoescape=self.kind == "html"))
        if "\x00missing:" in text:
            missing = sorted({part.split("\x00", 1)[0] for part in text.split("\x00missing:")[1:]})
            raise RowError(f"Missing field: {', '.join(missing)}")
        return name, text.encode()


def load_template(content: bytes, name: str) -> Renderer:
    """Parse the template once; raise ``BatchInputError`` if it is not a usable DOCX/HTML/text template."""
    extension = _extension(name)
    if extension == ".docx":
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)
        try:
            # Parsing the document's Jinja2 finds syntax errors before any row is rendered.
            DocxTemplate(io.BytesIO(content)).get_undeclared_template_variables(env)
        except Exception as exc:
            raise BatchInputError(f"Cannot parse the DOCX template: {exc}") from None
        return Renderer("docx", content, _jinja_env=env)
    if extension in (".html", ".txt"):
        try:
            text = content.decode("utf-8")
            template = Engine(string_if_invalid=_MISSING).from_string(text)
        except (UnicodeDecodeError, TemplateSyntaxError) as exc:
            raise BatchInputError(f"Cannot parse the template: {exc}") from None
        return Renderer(extension[1:], content, _django_template=template)
    raise BatchInputError(f"Templates must be {', '.join(TEMPLATE_EXTENSIONS)}, not {extension or 'no extension'}")


def template_fields(renderer: Renderer, columns: list[str]) -> set[str]:
    """
    The fields ``renderer`` uses that are not among ``columns``: a DOCX's undeclared Jinja2
    variables, or the variables a text/HTML template still misses once every column has a value.
    """
    if renderer.kind == "docx":
        used = DocxTemplate(io.BytesIO(renderer.source)).get_undeclared_template_variables(renderer._jinja_env)
        return set(used) - set(columns)
    text = renderer._django_template.render(Context(dict.fromkeys(columns, "x")))
    return {part.split("\x00", 1)[0] for part in text.split("\x00missing:")[1:]}


def check_upload(data: bytes, data_name: str, template: bytes, template_name: str) -> None:
    """
    Refuse an upload whose every document would fail: raise ``BatchInputError`` (``field`` set)
    for an unreadable data file or template, a header row without names or naming a column twice,
    or a template field that is no column of the data. A field missing from some rows only fails
    those documents, as before (``Renderer.render``).
    """
    try:
        header, _ = read_table(data, data_name)
    except BatchInputError as exc:
        raise BatchInputError(str(exc), field="data_file") from None
    try:
        renderer = load_template(template, template_name)
    except BatchInputError as exc:
        raise BatchInputError(str(exc), field="template") from None
    missing = sorted(template_fields(renderer, header))
    if missing:
        columns = _quoted(column for column in header if column) or "none"
        # One column whose name holds a separator: the file was written with another delimiter.
        hint = ""
        if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
            hint = ". The header row reads as one column: separate the columns with commas"
        noun = "field" if len(missing) == 1 else "fields"
        raise BatchInputError(
            f"The template uses the {noun} {_quoted(missing)}, which the data file has no column for "
            f"(its columns: {columns}){hint}",
            field="template",
        )
