"""Writes the API classes, models, docs and sandbox tables of kenar_api_client from the OpenAPI spec."""
