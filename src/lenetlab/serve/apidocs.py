"""``GET /docs``: the API reference as one server-rendered HTML page, built from the OpenAPI schema.

FastAPI's Swagger UI and ReDoc pages load their scripts and styles from a CDN and start with an
inline script: offline they are blank, and they need a relaxed Content-Security-Policy. This page
needs neither: plain HTML (every schema string escaped) and the site's own stylesheet, so it renders
with the network unplugged under the same strict CSP as the rest of the server.
"""

import re
from html import escape

METHODS = ("get", "post", "put", "patch", "delete")


def _anchor(method: str, path: str) -> str:
    return escape(f"{method}-{path.strip('/').replace('/', '-')}")


_ROLE = re.compile(r":(?:[a-z]+:)?[a-z]+:`(~?)([^`]+)`")  # :func:`x`, :py:class:`~a.B` (shown as B)
_LITERAL = re.compile(r"``([^`]+)``")


def prose(text: str | None) -> str:
    """A docstring's text as escaped HTML without reST markup: ``x`` and :func:`x` become <code>x</code>."""
    html = escape(text or "")
    html = _ROLE.sub(lambda m: f"<code>{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}</code>", html)
    return _LITERAL.sub(r"<code>\1</code>", html)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def schema_type(schema: dict | None) -> str:
    """A short human-readable type of a JSON schema: ``integer``, ``list[Activation]``, ``string | null``...
    (plain text, not yet escaped)."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(schema_type(s) for s in schema[key])
    kind = schema.get("type", "object")
    if kind == "array":
        return f"list[{schema_type(schema.get('items'))}]"
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    if kind == "string" and schema.get("format"):
        return f"string ({schema['format']})"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"dict[string, {schema_type(schema['additionalProperties'])}]"
    return str(kind)


_LIMITS = {
    "minimum": "≥",
    "maximum": "≤",
    "minLength": "length ≥",
    "maxLength": "length ≤",
    "minItems": "items ≥",
    "maxItems": "items ≤",
}


def _described(description: str, schema: dict) -> str:
    """A field's description and the limits of its schema, as HTML."""
    parts = [f"{label} {schema[key]}" for key, label in _LIMITS.items() if key in schema]
    if "default" in schema:
        parts.append(f"default {schema['default']!r}")
    return prose(" ".join(x for x in (description, ", ".join(parts)) if x))


def _type_cell(schema: dict | None) -> str:
    """The type as HTML: a link to the schema's section when it names one."""
    text = escape(schema_type(schema))
    refs = []
    stack = [schema or {}]
    while stack:  # link every named schema inside (items, anyOf...)
        s = stack.pop()
        if "$ref" in s:
            refs.append(_ref_name(s["$ref"]))
        stack += [x for k in ("anyOf", "oneOf", "allOf") for x in s.get(k, [])]
        if isinstance(s.get("items"), dict):
            stack.append(s["items"])
    for name in refs:
        text = text.replace(escape(name), f'<a href="#schema-{escape(name)}">{escape(name)}</a>', 1)
    return text


def _paragraphs(text: str | None) -> str:
    if not text:
        return ""
    return "".join(f"<p>{prose(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def _table(head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _operation(path: str, method: str, op: dict) -> str:
    anchor = _anchor(method, path)
    out = [
        f'<section class="op" id="{anchor}"><h3><span class="method {method}">{method.upper()}</span> '
        f"<code>{escape(path)}</code></h3>"
    ]
    if op.get("summary"):
        out.append(f'<p class="summary">{prose(op["summary"])}</p>')
    out.append(_paragraphs(op.get("description")))
    params = [
        [
            f"<code>{escape(p['name'])}</code>",
            escape(p.get("in", "")),
            _type_cell(p.get("schema")),
            "yes" if p.get("required") else "no",
            _described(p.get("description") or p.get("schema", {}).get("description", ""), p.get("schema", {})),
        ]
        for p in op.get("parameters", [])
    ]
    if params:
        out.append("<h4>Parameters</h4>" + _table(["name", "in", "type", "required", "description"], params))
    body = op.get("requestBody")
    if body:
        rows = [[f"<code>{escape(ctype)}</code>", _type_cell(c.get("schema"))] for ctype, c in body["content"].items()]
        out.append("<h4>Request body</h4>" + _table(["content type", "schema"], rows))
    rows = []
    for status, r in op.get("responses", {}).items():
        schema = next(iter(r.get("content", {}).values()), {}).get("schema")
        cells = [f"<code>{escape(str(status))}</code>", prose(r.get("description", ""))]
        rows.append([*cells, _type_cell(schema) if schema else ""])
    out.append("<h4>Responses</h4>" + _table(["status", "meaning", "body"], rows))
    out.append("</section>")
    return "".join(out)


def _schema(name: str, schema: dict) -> str:
    required = set(schema.get("required", []))
    rows = [
        [
            f"<code>{escape(prop)}</code>",
            _type_cell(s),
            "yes" if prop in required else "no",
            _described(s.get("description", ""), s),
        ]
        for prop, s in schema.get("properties", {}).items()
    ]
    table = _table(["field", "type", "required", "description"], rows) or f"<p>{_type_cell(schema)}</p>"
    return (
        f'<section class="schema" id="schema-{escape(name)}"><h3>{escape(name)}</h3>'
        f"{_paragraphs(schema.get('description'))}{table}</section>"
    )


def render_api_docs(openapi: dict) -> str:
    """The whole page (an HTML string) for an OpenAPI 3 schema ``openapi`` (``app.openapi()``)."""
    info = openapi.get("info", {})
    title = escape(info.get("title", "API"))
    ops = [(path, m, item[m]) for path, item in openapi.get("paths", {}).items() for m in METHODS if m in item]
    toc = "".join(
        f'<li><a href="#{_anchor(m, p)}"><code>{m.upper()} {escape(p)}</code></a> {prose(op.get("summary", ""))}</li>'
        for p, m, op in ops
    )
    schemas = openapi.get("components", {}).get("schemas", {})
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title} · API</title><link rel="stylesheet" href="/static/style.css"></head>'
        f'<body class="apidocs"><main><h1>{title} <small>{escape(str(info.get("version", "")))}</small></h1>'
        f'<p><a href="/">the draw-a-digit page</a> · <a href="/openapi.json">OpenAPI schema (JSON)</a></p>'
        f'<div class="description">{_paragraphs(info.get("description"))}</div>'
        f'<h2>Endpoints</h2><ul class="toc">{toc}</ul>'
        + "".join(_operation(p, m, op) for p, m, op in ops)
        + "<h2>Schemas</h2>"
        + "".join(_schema(n, s) for n, s in schemas.items())
        + "</main></body></html>"
    )
