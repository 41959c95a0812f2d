"""GET /docs: the API reference rendered from an OpenAPI schema, escaped, with no script."""

from __future__ import annotations

from lenetlab.serve.apidocs import prose, render_api_docs, schema_type


def test_schema_types():
    assert schema_type({"type": "integer"}) == "integer"
    assert schema_type({"$ref": "#/components/schemas/Activation"}) == "Activation"
    assert schema_type({"type": "array", "items": {"$ref": "#/components/schemas/TopK"}}) == "list[TopK]"
    assert schema_type({"anyOf": [{"type": "string"}, {"type": "null"}]}) == "string | null"
    assert schema_type({"type": "string", "format": "binary"}) == "string (binary)"
    assert schema_type({"enum": ["maps", "vector"], "type": "string"}) == "'maps' | 'vector'"
    assert schema_type(None) == "any"


def test_every_string_of_the_schema_is_escaped():
    evil = "<script>alert(1)</script>"
    spec = {
        "info": {"title": evil, "version": "1", "description": evil},
        "paths": {
            "/x": {
                "post": {
                    "summary": evil,
                    "parameters": [{"name": evil, "in": "query", "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": evil}},
                }
            }
        },
        "components": {"schemas": {"S": {"properties": {"a": {"type": "string", "description": evil}}}}},
    }
    page = render_api_docs(spec)
    assert "<script" not in page and page.count("&lt;script&gt;") >= 6
    assert '<a href="#post-x">' in page and 'id="schema-S"' in page


def test_prose_turns_rest_markup_into_code():
    assert prose("``GET /`` calls :func:`lenetlab.x.f` & :class:`~a.B`") == (
        "<code>GET /</code> calls <code>lenetlab.x.f</code> &amp; <code>B</code>"
    )


def test_served_docs_page_shows_no_rest_markup():
    from fastapi.testclient import TestClient

    from lenetlab.serve.app import create_app

    page = TestClient(create_app()).get("/docs").text
    for markup in ("``", ":func:", ":mod:", ":class:", ":data:", ":meth:"):
        assert markup not in page, markup
    assert "<code>" in page
