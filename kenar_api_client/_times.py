"""The range of times the SDK and the sandbox accept: what a ``datetime`` can show."""

#: 9999-12-31T23:59:59Z in epoch seconds: no time later than this can be shown, stored or compared.
LATEST_TIME = 253402300799.0
