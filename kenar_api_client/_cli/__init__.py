"""The commands behind ``kenar-events`` (see :mod:`kenar_api_client.cli`), one module per area."""
