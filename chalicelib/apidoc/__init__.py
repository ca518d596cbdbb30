"""The API described: an OpenAPI 3.1 document built from Chalice's route table and the pydantic models that
validate requests and shape answers (`GET /api/openapi.json`). Each route says what it takes and answers with an
`Operation` beside its handler in app.py; `openapi_document` does the rest, so the document cannot drift from
the code (tests/unit/test_openapi.py holds every route to having one, and tests/fuzz holds the API to it)."""
