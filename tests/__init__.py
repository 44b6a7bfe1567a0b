"""The test suite: mirrors the packages; shared fakes and builders live in tests.fakes."""
