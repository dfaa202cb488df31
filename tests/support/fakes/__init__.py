"""Loopback fakes of the platforms the channels speak to, for end-to-end tests."""
