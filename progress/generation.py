"""
Turning one data file and one template into documents (seed 001's batch document generator).

- Data: CSV (UTF-8, header row) or XLSX (the first sheet, header row; openpyxl). Each further row
  is one document's context: ``{column header: cell text}``; blank rows are skipped.
- Template: DOCX (docxtpl: Jinja2 tags in a Word file) or text/HTML (``.txt``, ``.html``:
  Django's template language, HTML escaped in ``.html``).

A data file or template that cannot be read raises ``BatchInputError`` before any document is
made (the task fails at once, with the message). A row that cannot be rendered (a field the
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
    """The data file or the template cannot be used at all; the message says why."""


class RowError(Exception):
    """One row cannot be rendered; the message says why (stored on its document)."""


def _extension(name: str) -> str:
    return PurePath(name).suffix.lower()


def read_rows(content: bytes, name: str) -> list[dict[str, str]]:
    """Return the rows of a CSV or XLSX file as dicts of header -> text; raise ``BatchInputError``."""
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
        raise BatchInputError("The data file has no header row")
    header = [column.strip() for column in table[0]]
    # A row shorter than the header lacks those fields (a missing field fails its document);
    # an empty cell is a field whose value is "".
    return [dict(zip(header, row, strict=False)) for row in table[1:] if any(cell.strip() for cell in row)]


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
