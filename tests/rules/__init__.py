"""Unit tests of the pure rules (jobs/rules): no Redis, no sockets."""
