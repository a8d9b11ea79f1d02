"""The Docker Engine API (v1.41) over a unix or tcp socket: one more client of the
library and state the CLI uses (``pybuild system service``); one module per API area."""
