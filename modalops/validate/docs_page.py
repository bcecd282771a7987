"""Great Expectations Data Docs as one self-contained HTML page, readable in MLflow's viewer.

The Data Docs site links its styles and scripts from CDNs and its logo and pages by relative
paths: MLflow's artifact viewer shows one file in a sandboxed frame, so the site rendered
unstyled, with a broken logo, six folder clicks from a result (issue 24). This page holds every
validation result's sections with a small inlined stylesheet, no scripts, no images and no link
to anything outside itself. The site stays as it is for a browser that opens it from disk.
"""

from __future__ import annotations

import html
from pathlib import Path

# Bootstrap's look for the few classes the result pages use; nothing is fetched.
STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       font-size: 14px; color: #212529; margin: 0; padding: 16px 24px; line-height: 1.45; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
     border-bottom: 1px solid #dee2e6; padding-bottom: 4px; }
h3, h4, h5, h6 { font-size: 15px; margin: 12px 0 6px; }
p.lead { color: #6c757d; margin-top: 0; }
.ge-section { margin: 0 0 14px; padding: 0 0 8px; border-bottom: 1px solid #f1f3f5; }
table { border-collapse: collapse; margin: 6px 0; max-width: 100%; }
.table-responsive { overflow-x: auto; }
th, td { border: 1px solid #dee2e6; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f8f9fa; }
.badge { display: inline-block; padding: 1px 6px; border-radius: 4px; font-size: 12px;
         background: #e9ecef; margin: 1px; }
.alert { padding: 6px 10px; border-radius: 4px; background: #f8f9fa; border: 1px solid #e9ecef; }
.mark-ok { color: #198754; font-weight: bold; } .mark-fail { color: #dc3545; font-weight: bold; }
code, pre { font-family: SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
pre { white-space: pre-wrap; }
nav.toc a { margin-right: 12px; }
"""

# font-awesome icons the result pages use for a verdict, as text
_ICONS = {"fa-check-circle": ("✓", "mark-ok"), "fa-times-circle": ("✗", "mark-fail")}


def result_pages(site_dir: Path) -> list[Path]:
    """The validation result pages of a Data Docs site (one per suite run), in path order."""
    return sorted((Path(site_dir) / "validations").rglob("*.html"))


def _sections(page: Path) -> tuple[str, list]:
    """(the page's title, its `ge-section` elements, cleaned) from one result page."""
    import lxml.html

    root = lxml.html.parse(str(page)).getroot()
    for bad in root.xpath("//script | //link | //img | //style | //iframe | //button"):
        bad.drop_tree()
    for icon in root.xpath("//i[contains(@class, 'fa')]"):
        classes = set((icon.get("class") or "").split())
        text, css = next((v for k, v in _ICONS.items() if k in classes), ("", ""))
        span = lxml.html.Element("span", {"class": css} if css else {})
        span.text = text
        span.tail = icon.tail
        icon.getparent().replace(icon, span)
    for anchor in root.xpath("//a[@href]"):  # links into the site lead nowhere from one file
        if not anchor.get("href", "").startswith("#"):
            del anchor.attrib["href"]
    for element in root.xpath("//*[@src or @srcset or @style or @onclick]"):
        for attr in ("src", "srcset", "style", "onclick"):
            element.attrib.pop(attr, None)
    sections = root.xpath("//div[contains(concat(' ', @class, ' '), ' ge-section ')]")
    title = page.stem
    return title, sections


def single_page(site_dir: Path, title: str = "Data validation") -> str:
    """Every validation result of the site at `site_dir` in one self-contained HTML page."""
    import lxml.html

    pages = result_pages(site_dir)
    body: list[str] = []
    toc = []
    for i, page in enumerate(pages):
        name, sections = _sections(page)
        anchor = f"result-{i}"
        toc.append(f'<a href="#{anchor}">{html.escape(name)}</a>')
        body.append(f'<h2 id="{anchor}">{html.escape(name)}</h2>')
        body += [lxml.html.tostring(s, encoding="unicode") for s in sections]
    if not pages:
        body.append("<p>The Data Docs site holds no validation result.</p>")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='lead'>Great Expectations validation results, "
        f"one section per suite ({len(pages)}). The full Data Docs site is under "
        "<code>data_docs/</code>.</p>"
        f"<nav class='toc'>{''.join(toc)}</nav>" + "".join(body) + "</body></html>"
    )


def write_single_page(site_dir: Path, target: Path, title: str = "Data validation") -> Path:
    """`single_page(site_dir)` written to `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(single_page(site_dir, title), encoding="utf-8")
    return target
